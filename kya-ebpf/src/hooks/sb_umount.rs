use kya_common::mounts::op;

use super::agent_hook;
use crate::mounts::{guard, parent_shared};

agent_hook! {
    /// `sb_umount(mnt, flags)`: every `umount(2)` and `umount2(2)`. An agent may unmount only
    /// in a mount namespace it made for itself, and there not from below a shared mount
    /// (the unmount would propagate to its peers).
    ///
    /// Denies with EPERM and an event; a kernel read error denies too (fail closed).
    #[lsm(hook = "sb_umount")]
    fn sb_umount(ctx: LsmContext, tag: TaskTag) -> i32 {
        let mnt: *const u8 = ctx.arg(0);
        guard(tag, op::UNMOUNT, || parent_shared(mnt as u64))
    }
}
