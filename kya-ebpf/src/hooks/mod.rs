//! One attached program per file, each named after the kernel hook it attaches to.
//!
//! Every LSM program opens the same way, written once here rather than in each file:
//! [`agent_hook!`] for the hooks that only concern agents (every deny), [`every_task_hook!`]
//! for the few that must see every task (matching a task to an agent, forgetting a freed
//! task). The tracepoints and the `fexit` program cannot refuse anything and open by hand.
//!
//! With the feature `floor` (the benchmark's floor, never the daemon's object) every program,
//! these macros' and the hand-opened ones alike, returns at once.
use aya_ebpf::programs::LsmContext;

use crate::decision::ALLOW;

mod bpf;
mod bprm_check_security;
mod cgroup_attach_task;
mod copy_mnt_ns;
mod file_ioctl;
mod file_ioctl_compat;
mod file_open;
mod file_permission;
mod file_truncate;
mod inode_create;
mod inode_link;
mod inode_mkdir;
mod inode_mknod;
mod inode_permission;
mod inode_rename;
mod inode_symlink;
mod inode_unlink;
mod kernel_load_data;
mod kernel_module_request;
mod kernel_read_file;
mod key_alloc;
mod key_permission;
mod mmap_file;
mod move_mount;
mod path_chmod;
mod path_chown;
mod path_truncate;
mod ptrace_access_check;
mod sb_mount;
mod sb_pivotroot;
mod sb_umount;
mod sched_process_fork;
mod security_key_free;
mod socket_accept;
mod socket_bind;
mod socket_connect;
mod socket_create;
mod socket_listen;
mod socket_sendmsg;
mod task_alloc;
mod task_fix_setuid;
mod task_free;
mod task_kill;
mod unix_may_send;
mod unix_stream_connect;

/// An LSM program whose body runs for every task, after the opening every LSM program shares:
/// if a program that ran before it on the hook refused the operation, that refusal is passed
/// on and the body does not run.
///
/// Where that earlier verdict sits comes from the hook's entry in
/// [`kya_common::programs::LSM_HOOKS`] (it follows the hook's arguments), never from a number
/// written here; a hook the table gives no verdict to read (one that returns nothing, or whose
/// arguments differ between kernels) goes straight to the body. The program must be named after
/// its hook, and the hook must be in that table; anything else stops the build.
///
/// ```ignore
/// every_task_hook! {
///     /// `task_fix_setuid(new, old, flags)`: ...
///     #[lsm(hook = "task_fix_setuid")]
///     fn task_fix_setuid(ctx: LsmContext) -> i32 {
///         ...
///     }
/// }
/// ```
macro_rules! every_task_hook {
    (
        $(#[doc = $doc:literal])*
        #[lsm(hook = $hook:literal)]
        fn $name:ident($ctx:ident: LsmContext) -> i32 $body:block
    ) => {
        $(#[doc = $doc])*
        #[::aya_ebpf::macros::lsm(hook = $hook)]
        pub fn $name($ctx: ::aya_ebpf::programs::LsmContext) -> i32 {
            const HOOK: ::kya_common::programs::LsmHook =
                ::kya_common::programs::LsmHook::named($hook);
            const _: () = assert!(
                HOOK.is_named(stringify!($name)),
                concat!("the program on ", $hook, " must be named ", $hook)
            );
            if cfg!(feature = "floor") {
                return $crate::decision::ALLOW;
            }
            if let Some(verdict) = $crate::hooks::earlier_refusal(&$ctx, HOOK.previous_verdict()) {
                return verdict;
            }
            $body
        }
    };
}

/// An LSM program whose body runs only for agent tasks, and gets the agent's tag: the opening
/// of [`every_task_hook!`], then one lookup of the current task's tag. An untagged task leaves
/// after that lookup with [`ALLOW`], so everything the body refuses, it refuses to an agent.
///
/// ```ignore
/// agent_hook! {
///     /// `file_open(file)`: ...
///     #[lsm(hook = "file_open")]
///     fn file_open(ctx: LsmContext, tag: TaskTag) -> i32 {
///         ...
///     }
/// }
/// ```
macro_rules! agent_hook {
    (
        $(#[doc = $doc:literal])*
        #[lsm(hook = $hook:literal)]
        fn $name:ident($ctx:ident: LsmContext, $tag:ident: TaskTag) -> i32 $body:block
    ) => {
        $crate::hooks::every_task_hook! {
            $(#[doc = $doc])*
            #[lsm(hook = $hook)]
            fn $name($ctx: LsmContext) -> i32 {
                let Some($tag) = $crate::tagging::tag_of($crate::tagging::current_task()) else {
                    return $crate::decision::ALLOW;
                };
                $body
            }
        }
    };
}

use agent_hook;
use every_task_hook;

/// The verdict of the program that ran before this one on the hook, if it refused: an LSM
/// program passes a refusal on rather than overrule it. `previous_verdict` is where that
/// verdict sits among the program's arguments ([`LsmHook::previous_verdict`]); with `None`
/// nothing is read.
///
/// [`LsmHook::previous_verdict`]: kya_common::programs::LsmHook::previous_verdict
#[inline(always)]
fn earlier_refusal(ctx: &LsmContext, previous_verdict: Option<usize>) -> Option<i32> {
    let verdict: i32 = ctx.arg(previous_verdict?);
    (verdict != ALLOW).then_some(verdict)
}
