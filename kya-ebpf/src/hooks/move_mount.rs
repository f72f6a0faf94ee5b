use kya_common::mounts::op;

use super::agent_hook;
use crate::mounts::{guard, path_shared};

agent_hook! {
    /// `move_mount(from_path, to_path)`: attaching a detached tree (`open_tree` with
    /// `OPEN_TREE_CLONE`, `fsmount`) or moving a mount with `move_mount(2)`. An agent may do
    /// so only in a mount namespace it made for itself, and there not below a shared mount.
    ///
    /// Denies with EPERM and an event; a kernel read error denies too (fail closed).
    #[lsm(hook = "move_mount")]
    fn move_mount(ctx: LsmContext, tag: TaskTag) -> i32 {
        let to_path: *const u8 = ctx.arg(1);
        guard(tag, op::MOVE_MOUNT, || path_shared(to_path as u64))
    }
}
