use kya_common::event::DenyKind;

use super::agent_hook;
use crate::protect::guard_dentry;

agent_hook! {
    /// `inode_create(dir, dentry, mode)`: an agent cannot create a file at a protected path or
    /// inside a protected tree (kya's unit file where none is installed, a file in kya's state
    /// directory).
    ///
    /// Denies with EPERM and an event; a kernel read error denies too (fail closed).
    #[lsm(hook = "inode_create")]
    fn inode_create(ctx: LsmContext, tag: TaskTag) -> i32 {
        let dentry: *const u8 = ctx.arg(1);
        guard_dentry(dentry as u64, tag, DenyKind::FileChange)
    }
}
