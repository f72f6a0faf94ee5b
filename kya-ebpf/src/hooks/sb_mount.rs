use kya_common::mounts::{flags::MS_BIND, mount_op, op};

use super::agent_hook;
use crate::mounts::{guard, path_shared};

agent_hook! {
    /// `sb_mount(dev_name, path, type, flags, data)`: every `mount(2)`, whatever it does (a new
    /// mount, a bind mount, a remount, `MS_MOVE`, a propagation change). An agent may mount
    /// only in a mount namespace it made for itself, and there not below a shared mount (whose
    /// peers, possibly outside the namespace, would receive the mount) nor remount a
    /// filesystem as a whole (every namespace that mounts it would see the new options; a
    /// bind remount, which changes one mount's flags, is fine).
    ///
    /// Denies with EPERM and an event (the operation in `detail`); a kernel read error denies
    /// too (fail closed).
    #[lsm(hook = "sb_mount")]
    fn sb_mount(ctx: LsmContext, tag: TaskTag) -> i32 {
        let path: *const u8 = ctx.arg(1);
        let flags: u64 = ctx.arg(3);
        let op = mount_op(flags);
        guard(tag, op, || match op {
            // Changes the named mount in the caller's namespace only.
            op::PROPAGATION => Ok(false),
            op::REMOUNT => Ok(flags & MS_BIND == 0),
            _ => path_shared(path as u64),
        })
    }
}
