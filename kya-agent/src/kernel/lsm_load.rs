//! Loading the LSM programs, several at a time: the kernel's verifier is most of a daemon
//! start (seconds per program on older kernels), each program is verified on its own, and
//! hosts have more than one CPU. Attaching stays sequential and in `LSM_HOOKS` order.
use std::{num::NonZeroUsize, thread};

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
        if let Some(&hook) = LSM_HOOKS.iter().find(|&&hook| hook == name) {
            let lsm: &mut Lsm = program
                .try_into()
                .map_err(|source| KernelError::program(hook, source))?;
            programs.push((hook, lsm));
        }
    }
    if let Some(&missing) = LSM_HOOKS
        .iter()
        .find(|&&hook| !programs.iter().any(|(name, _)| *name == hook))
    {
        return Err(KernelError::MissingProgram(missing));
    }
    let loaders = thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .clamp(1, MAX_LOADERS);
    // Deal the programs out in turn, so that each loader gets big and small ones.
    let mut shares: Vec<Vec<(&'static str, &mut Lsm)>> = (0..loaders).map(|_| Vec::new()).collect();
    for (index, program) in programs.into_iter().enumerate() {
        shares[index % loaders].push(program);
    }
    thread::scope(|scope| {
        let workers: Vec<_> = shares
            .into_iter()
            .map(|share| scope.spawn(move || load_share(share, btf)))
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a program loader panicked"))
            .collect::<Result<Vec<()>, KernelError>>()
    })?;
    Ok(())
}

fn load_share(share: Vec<(&'static str, &mut Lsm)>, btf: &Btf) -> Result<(), KernelError> {
    for (hook, program) in share {
        let started = std::time::Instant::now();
        program
            .load(hook, btf)
            .map_err(|source| KernelError::program(hook, source))?;
        tracing::debug!(
            program = hook,
            elapsed_ms = started.elapsed().as_millis(),
            "loaded"
        );
    }
    Ok(())
}
