use kya_common::event::DenyKind;

use super::agent_hook;
use crate::{decision::ALLOW, protect::guard_dentry};

agent_hook! {
    /// `inode_link(old_dentry, dir, new_dentry)`: an agent cannot make a new hard link to a
    /// protected file (a name outside every protected directory that it could later read
    /// through), nor link a file of its own in at a protected path or into a protected tree.
    ///
    /// Denies with EPERM and an event; a kernel read error denies too (fail closed).
    #[lsm(hook = "inode_link")]
    fn inode_link(ctx: LsmContext, tag: TaskTag) -> i32 {
        let old_dentry: *const u8 = ctx.arg(0);
        let decision = guard_dentry(old_dentry as u64, tag, DenyKind::FileLink);
        if decision != ALLOW {
            return decision;
        }
        let new_dentry: *const u8 = ctx.arg(2);
        guard_dentry(new_dentry as u64, tag, DenyKind::FileLink)
    }
}
