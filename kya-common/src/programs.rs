//! Names of the kernel programs and what each attaches to, shared by both sides.

/// A BPF LSM hook that kya attaches a program to, as the kernel declares it in
/// `include/linux/lsm_hook_defs.h`. kya's program on the hook has the hook's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LsmHook {
    /// The hook's name (the kernel's `security_<name>` and `bpf_lsm_<name>`).
    pub name: &'static str,
    /// How many arguments the hook takes: the same in 6.1 and 6.12, and `None` where kernels
    /// kya may meet disagree (the program then reads no argument and no earlier verdict).
    pub args: Option<usize>,
    /// What the hook returns.
    pub returns: Returns,
    /// Whether kya runs without this hook on a kernel that lacks it (its BTF has no
    /// `bpf_lsm_<name>`): the program is then neither loaded nor attached, and the daemon
    /// reports the hook as not enforcing. Every other hook is required: a kernel without it
    /// cannot run kya.
    pub optional: bool,
}

/// What an LSM hook returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Returns {
    /// `int`, a verdict: 0 lets the operation proceed.
    Int,
    /// `void`: the hook decides nothing.
    Void,
}

impl LsmHook {
    /// `LSM_HOOK(int, 0, name, ...)` with `args` arguments.
    const fn int(name: &'static str, args: usize) -> Self {
        Self {
            name,
            args: Some(args),
            returns: Returns::Int,
            optional: false,
        }
    }

    /// `LSM_HOOK(void, LSM_RET_VOID, name, ...)` with `args` arguments.
    const fn void(name: &'static str, args: usize) -> Self {
        Self {
            name,
            args: Some(args),
            returns: Returns::Void,
            optional: false,
        }
    }

    /// This hook, attached only where the kernel has it (the field `optional`).
    const fn optional(self) -> Self {
        Self {
            optional: true,
            ..self
        }
    }

    /// Where a program on this hook finds the verdict of the program that ran before it, as an
    /// index into its arguments: BPF hands an `int` hook's programs the hook's arguments
    /// followed by that verdict. `None` for a `void` hook, which has no verdict, and for a hook
    /// whose number of arguments differs between kernels.
    #[must_use]
    pub const fn previous_verdict(self) -> Option<usize> {
        match (self.returns, self.args) {
            (Returns::Int, Some(args)) => Some(args),
            _ => None,
        }
    }

    /// Whether this is the hook called `name` (usable in constants).
    #[must_use]
    pub const fn is_named(self, name: &str) -> bool {
        let (ours, theirs) = (self.name.as_bytes(), name.as_bytes());
        if ours.len() != theirs.len() {
            return false;
        }
        let mut at = 0;
        while at < ours.len() {
            if ours[at] != theirs[at] {
                return false;
            }
            at += 1;
        }
        true
    }

    /// The hook of [`LSM_HOOKS`] called `name`. Meant for constants, where a name that is not
    /// in the table stops the build.
    ///
    /// # Panics
    /// If no hook of [`LSM_HOOKS`] is called `name`.
    #[must_use]
    pub const fn named(name: &str) -> Self {
        let mut at = 0;
        while at < LSM_HOOKS.len() {
            if LSM_HOOKS[at].is_named(name) {
                return LSM_HOOKS[at];
            }
            at += 1;
        }
        panic!("not a hook of kya_common::programs::LSM_HOOKS")
    }
}

/// The BPF LSM hooks kya attaches to, in attach order, each with its number of arguments as
/// `include/linux/lsm_hook_defs.h` declares it (checked in 6.1 and 6.12, where every one is
/// the same). A hook marked `.optional()` is attached only where the kernel has it.
pub const LSM_HOOKS: &[LsmHook] = &[
    LsmHook::int("task_alloc", 2),
    LsmHook::void("task_free", 1),
    LsmHook::int("bprm_check_security", 1),
    LsmHook::int("task_fix_setuid", 3),
    LsmHook::int("file_open", 1),
    LsmHook::int("file_permission", 2),
    LsmHook::int("file_ioctl", 3),
    // OPTIONAL: 32-bit processes' ioctls, a hook added in 6.8 and brought back to the stable
    // kernels (Debian's 6.1 and 6.12 have it). Where a kernel lacks it, those ioctls pass
    // `file_ioctl` instead, so nothing is lost by running without it there.
    LsmHook::int("file_ioctl_compat", 3).optional(),
    LsmHook::int("mmap_file", 4),
    // OPTIONAL: truncation through a file (6.2 and later): `ftruncate(2)` and the truncation of
    // an `O_TRUNC` open, which 6.1 checks through `path_truncate` instead.
    LsmHook::int("file_truncate", 1).optional(),
    LsmHook::int("inode_create", 3),
    LsmHook::int("inode_symlink", 3),
    LsmHook::int("inode_mkdir", 3),
    LsmHook::int("inode_mknod", 4),
    LsmHook::int("inode_link", 3),
    LsmHook::int("inode_rename", 4),
    LsmHook::int("inode_unlink", 2),
    LsmHook::int("path_truncate", 1),
    LsmHook::int("path_chmod", 2),
    LsmHook::int("path_chown", 3),
    LsmHook::int("ptrace_access_check", 2),
    LsmHook::int("task_kill", 4),
    // Three arguments in 6.1 and 6.12; later kernels add a fourth (`bool kernel`, seen in 6.18).
    LsmHook {
        name: "bpf",
        args: None,
        returns: Returns::Int,
        optional: false,
    },
    LsmHook::int("kernel_module_request", 1),
    LsmHook::int("kernel_load_data", 2),
    LsmHook::int("kernel_read_file", 3),
    LsmHook::int("socket_create", 4),
    LsmHook::int("socket_connect", 3),
    LsmHook::int("socket_sendmsg", 3),
    LsmHook::int("socket_accept", 2),
    LsmHook::int("socket_bind", 3),
    LsmHook::int("socket_listen", 2),
    LsmHook::int("unix_stream_connect", 3),
    LsmHook::int("unix_may_send", 2),
    LsmHook::int("sb_mount", 5),
    LsmHook::int("sb_umount", 2),
    LsmHook::int("move_mount", 2),
    LsmHook::int("sb_pivotroot", 2),
    LsmHook::int("inode_permission", 2),
    // OPTIONAL: kernel keys (`CONFIG_KEYS`). A kernel built without keys has no keys to
    // protect, and neither hook; one built with keys has both. `key_alloc` before
    // `key_permission`: a key an agent makes is known before any check can meet it. Freed keys
    // are forgotten by the `fexit` program on `security_key_free` ([`KEY_FREE_FEXIT`]).
    LsmHook::int("key_alloc", 3).optional(),
    LsmHook::int("key_permission", 3).optional(),
];

/// BTF tracepoints: each program is named after its tracepoint.
pub const BTF_TRACEPOINTS: &[&str] = &["cgroup_attach_task", "sched_process_fork"];

/// Kernel functions with an `fexit` program, each program named after its function.
/// `copy_mnt_ns` records the mount namespaces agents make (see `kya_common::mounts`);
/// [`KEY_FREE_FEXIT`] forgets the keys agents made (see `kya_common::keys`).
pub const FEXITS: &[&str] = &["copy_mnt_ns", KEY_FREE_FEXIT];

/// The `fexit` program that forgets a freed key: on `security_key_free`, which every kernel
/// with keys calls for each key it frees (6.12 has no `key_free` LSM hook). Attached only where
/// the kernel has the key hooks, like them.
pub const KEY_FREE_FEXIT: &str = "security_key_free";

/// Task iterator that tags the thread ids listed in `ADOPT_REQUESTS`.
pub const ADOPT_TASKS_ITER: &str = "adopt_tasks";
/// Task iterator that lists every tagged task as `TaggedTaskRecord`s.
pub const TAGGED_TASKS_ITER: &str = "tagged_tasks";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hook_is_listed_once() {
        for (at, hook) in LSM_HOOKS.iter().enumerate() {
            assert!(
                !LSM_HOOKS[..at].iter().any(|other| other.name == hook.name),
                "{} is listed twice in LSM_HOOKS",
                hook.name
            );
        }
    }

    #[test]
    fn a_program_finds_the_previous_verdict_after_the_arguments() {
        assert_eq!(LsmHook::named("file_open").previous_verdict(), Some(1));
        assert_eq!(LsmHook::named("sb_mount").previous_verdict(), Some(5));
        assert_eq!(LsmHook::named("task_free").previous_verdict(), None);
        assert_eq!(LsmHook::named("bpf").previous_verdict(), None);
    }

    #[test]
    fn hooks_are_found_by_their_whole_name() {
        assert!(LsmHook::named("socket_create").is_named("socket_create"));
        assert!(!LsmHook::named("socket_create").is_named("socket_creat"));
        assert!(!LsmHook::named("socket_create").is_named("socket_create_"));
    }

    #[test]
    #[should_panic(expected = "not a hook of kya_common::programs::LSM_HOOKS")]
    fn a_hook_kya_does_not_attach_to_is_not_found() {
        let _ = LsmHook::named("socket_shutdown");
    }
}
