//! Loading the LSM programs, several at a time: the kernel's verifier is most of a daemon
//! start (seconds per program on older kernels), each program is verified on its own, and
//! hosts have more than one CPU. Attaching stays sequential and in `LSM_HOOKS` order.
use std::{
    num::NonZeroUsize,
    sync::{Mutex, PoisonError},
    thread,
};

use aya::{Btf, Ebpf, programs::Lsm};
use kya_common::programs::LSM_HOOKS;

use super::KernelError;

/// At most this many programs are verified at once (each verification holds its own copy
/// of the verifier's state in kernel memory).
const MAX_LOADERS: usize = 4;

/// Loads (verifies) every program of `LSM_HOOKS` into the kernel without attaching it.
pub(super) fn load_all(ebpf: &mut Ebpf, btf: &Btf) -> Result<(), KernelError> {
    let mut programs: Vec<(&'static str, &mut Lsm)> = Vec::with_capacity(LSM_HOOKS.len());
    for (name, program) in ebpf.programs_mut() {
        if let Some(hook) = LSM_HOOKS
            .iter()
            .map(|hook| hook.name)
            .find(|&hook| hook == name)
        {
            let lsm: &mut Lsm = program
                .try_into()
                .map_err(|source| KernelError::program(hook, source))?;
            programs.push((hook, lsm));
        }
    }
    if let Some(missing) = LSM_HOOKS
        .iter()
        .map(|hook| hook.name)
        .find(|&hook| !programs.iter().any(|(name, _)| *name == hook))
    {
        return Err(KernelError::MissingProgram(missing));
    }
    let loaders = thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .clamp(1, MAX_LOADERS);
    // One queue that every loader takes from: verification times differ tenfold between
    // programs, so fixed shares would leave loaders idle.
    let queue = Mutex::new(programs);
    thread::scope(|scope| {
        let workers: Vec<_> = (0..loaders)
            .map(|_| scope.spawn(|| load_from(&queue, btf)))
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a program loader panicked"))
            .collect::<Result<Vec<()>, KernelError>>()
    })?;
    Ok(())
}

/// Loads programs from `queue` until it is empty or a load fails.
fn load_from(queue: &Mutex<Vec<(&'static str, &mut Lsm)>>, btf: &Btf) -> Result<(), KernelError> {
    loop {
        let Some((hook, program)) = queue.lock().unwrap_or_else(PoisonError::into_inner).pop()
        else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        program
            .load(hook, btf)
            .map_err(|source| KernelError::program(hook, source))?;
        // What the verifier walked (`KYA_LOG=kya_agent=debug kya-agent probe` prints it): the
        // figure that grows toward the kernel's limit as a program grows.
        let verified_insns = program
            .info()
            .ok()
            .and_then(|info| info.verified_instruction_count());
        tracing::debug!(
            program = hook,
            elapsed_ms = started.elapsed().as_millis(),
            verified_insns,
            "loaded"
        );
    }
}
