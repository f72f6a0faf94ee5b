use kya_common::event::DenyKind;

use super::agent_hook;
use crate::protect::guard_dentry;

agent_hook! {
    /// `inode_unlink(dir, dentry)`: an agent cannot delete a protected file: a credential,
    /// kya's audit trail, or one of the pins that keep kya's programs attached.
    ///
    /// Denies with EPERM and an event; a kernel read error denies too (fail closed).
    #[lsm(hook = "inode_unlink")]
    fn inode_unlink(ctx: LsmContext, tag: TaskTag) -> i32 {
        let dentry: *const u8 = ctx.arg(1);
        guard_dentry(dentry as u64, tag, DenyKind::FileUnlink)
    }
}
