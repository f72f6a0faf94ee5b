use aya_ebpf::{macros::fexit, programs::FExitContext};

use crate::{
    mounts::record_namespace,
    tagging::{current_task, tag_of},
};

/// `copy_mnt_ns(flags, ns, user_ns, new_fs)` has returned (`fexit`): when an agent task made a
/// new mount namespace (`unshare` or `clone` with `CLONE_NEWNS`; for `clone` the caller is the
/// parent, whose child inherits its tag), the namespace is recorded as that agent's own, where
/// the mount hooks let the agent build its sandbox.
///
/// Untagged callers leave after one lookup. It cannot refuse anything: a namespace it fails to
/// record is counted as an internal error and the agent's mount operations in it are refused.
#[fexit(function = "copy_mnt_ns")]
pub fn copy_mnt_ns(ctx: FExitContext) -> i32 {
    if cfg!(feature = "floor") {
        return 0;
    }
    let Some(tag) = tag_of(current_task()) else {
        return 0;
    };
    let flags: u64 = ctx.arg(0);
    // The return value follows the four arguments.
    let new_ns: u64 = ctx.arg(4);
    record_namespace(tag, flags, new_ns);
    0
}
