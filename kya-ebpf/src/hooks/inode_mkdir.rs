use kya_common::event::DenyKind;

use super::agent_hook;
use crate::protect::guard_dentry;

agent_hook! {
    /// `inode_mkdir(dir, dentry, mode)`: an agent cannot create a directory at a protected path
    /// or inside a protected tree (a drop-in directory for kya's unit).
    ///
    /// Denies with EPERM and an event; a kernel read error denies too (fail closed).
    #[lsm(hook = "inode_mkdir")]
    fn inode_mkdir(ctx: LsmContext, tag: TaskTag) -> i32 {
        let dentry: *const u8 = ctx.arg(1);
        guard_dentry(dentry as u64, tag, DenyKind::FileChange)
    }
}
