//! Loading the LSM programs, several at a time: the kernel's verifier is most of a daemon
//! start (seconds per program on older kernels), each program is verified on its own, and
//! hosts have more than one CPU. Attaching stays sequential and in `LSM_HOOKS` order.
//!
//! Which programs: every hook of `kya_common::programs::LSM_HOOKS`, but an optional one only
//! where this kernel has it (its BTF has the function `bpf_lsm_<hook>` that the program
//! attaches to).
use std::{
    num::NonZeroUsize,
    sync::{Mutex, PoisonError},
    thread,
};

use aya::{Btf, Ebpf, programs::Lsm};
use aya_obj::btf::BtfKind;
use kya_common::programs::LsmHook;

use super::KernelError;

/// At most this many programs are verified at once (each verification holds its own copy
/// of the verifier's state in kernel memory).
const MAX_LOADERS: usize = 4;

/// The hooks of `hooks` to attach on a kernel that has the hooks `kernel_has` says it has:
/// every required one, and each optional one the kernel has, in `hooks` order. A required
/// hook the kernel lacks is not left out here: loading its program fails and says why.
pub(super) fn hooks_to_attach(
    hooks: &[LsmHook],
    kernel_has: impl Fn(&str) -> bool,
) -> Vec<&'static str> {
    hooks
        .iter()
        .filter(|hook| !hook.optional || kernel_has(hook.name))
        .map(|hook| hook.name)
        .collect()
}

/// Whether this kernel has the LSM hook `hook` (a BPF LSM program can attach to it).
pub(super) fn kernel_has_hook(btf: &Btf, hook: &str) -> bool {
    btf.id_by_type_name_kind(&format!("bpf_lsm_{hook}"), BtfKind::Func)
        .is_ok()
}

/// Loads (verifies) the program of every hook of `hooks` into the kernel without attaching it.
pub(super) fn load_all(
    ebpf: &mut Ebpf,
    btf: &Btf,
    hooks: &[&'static str],
) -> Result<(), KernelError> {
    let mut programs: Vec<(&'static str, &mut Lsm)> = Vec::with_capacity(hooks.len());
    for (name, program) in ebpf.programs_mut() {
        if let Some(hook) = hooks.iter().copied().find(|&hook| hook == name) {
            let lsm: &mut Lsm = program
                .try_into()
                .map_err(|source| KernelError::program(hook, source))?;
            programs.push((hook, lsm));
        }
    }
    if let Some(missing) = hooks
        .iter()
        .copied()
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

#[cfg(test)]
mod tests {
    use kya_common::programs::LSM_HOOKS;

    use super::hooks_to_attach;

    #[test]
    fn a_kernel_with_every_hook_gets_every_program() {
        let all: Vec<&str> = LSM_HOOKS.iter().map(|hook| hook.name).collect();
        assert_eq!(hooks_to_attach(LSM_HOOKS, |_| true), all);
    }

    #[test]
    fn an_optional_hook_the_kernel_lacks_is_left_out_and_nothing_else() {
        let attached = hooks_to_attach(LSM_HOOKS, |hook| hook != "file_ioctl_compat");
        assert!(!attached.contains(&"file_ioctl_compat"));
        assert!(attached.contains(&"file_ioctl"));
        assert_eq!(attached.len(), LSM_HOOKS.len() - 1);
    }

    #[test]
    fn a_required_hook_the_kernel_lacks_stays_so_that_its_load_fails() {
        let attached = hooks_to_attach(LSM_HOOKS, |hook| hook != "file_ioctl");
        assert!(
            attached.contains(&"file_ioctl"),
            "a kernel without a required hook must fail to load kya, not run without the hook"
        );
    }

    #[test]
    fn only_hooks_that_older_kernels_cover_elsewhere_are_optional() {
        let optional: Vec<&str> = LSM_HOOKS
            .iter()
            .filter(|hook| hook.optional)
            .map(|hook| hook.name)
            .collect();
        // 32-bit ioctls pass `file_ioctl` without the first, truncation `path_truncate`
        // without the second; a kernel without the key hooks has no keys (`CONFIG_KEYS=n`).
        assert_eq!(
            optional,
            [
                "file_ioctl_compat",
                "file_truncate",
                "key_alloc",
                "key_permission"
            ]
        );
    }
}
