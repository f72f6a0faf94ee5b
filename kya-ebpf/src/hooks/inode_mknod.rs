use kya_common::event::DenyKind;

use super::agent_hook;
use crate::protect::guard_dentry;

agent_hook! {
    /// `inode_mknod(dir, dentry, mode, dev)`: an agent cannot create a device node, FIFO or
    /// socket file at a protected path or inside a protected tree.
    ///
    /// Denies with EPERM and an event; a kernel read error denies too (fail closed).
    #[lsm(hook = "inode_mknod")]
    fn inode_mknod(ctx: LsmContext, tag: TaskTag) -> i32 {
        let dentry: *const u8 = ctx.arg(1);
        guard_dentry(dentry as u64, tag, DenyKind::FileChange)
    }
}
