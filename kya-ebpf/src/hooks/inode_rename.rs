use kya_common::event::DenyKind;

use super::agent_hook;
use crate::{decision::ALLOW, protect::guard_dentry};

agent_hook! {
    /// `inode_rename(old_dir, old_dentry, new_dir, new_dentry)`: an agent cannot move a
    /// protected file out of its protected place, nor replace one, nor move a file of its own
    /// in at a protected path or into a protected tree.
    ///
    /// Denies with EPERM and an event; a kernel read error denies too (fail closed).
    #[lsm(hook = "inode_rename")]
    fn inode_rename(ctx: LsmContext, tag: TaskTag) -> i32 {
        let old_dentry: *const u8 = ctx.arg(1);
        let decision = guard_dentry(old_dentry as u64, tag, DenyKind::FileRename);
        if decision != ALLOW {
            return decision;
        }
        // A negative target (nothing there yet) is checked as the entry it would become.
        let new_dentry: *const u8 = ctx.arg(3);
        guard_dentry(new_dentry as u64, tag, DenyKind::FileRename)
    }
}
