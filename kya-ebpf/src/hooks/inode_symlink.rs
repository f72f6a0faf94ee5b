use kya_common::event::DenyKind;

use super::agent_hook;
use crate::protect::guard_dentry;

agent_hook! {
    /// `inode_symlink(dir, dentry, old_name)`: an agent cannot put a symbolic link at a
    /// protected path or inside a protected tree (a unit file or a state file that points at a
    /// file of the agent's own).
    ///
    /// Denies with EPERM and an event; a kernel read error denies too (fail closed).
    #[lsm(hook = "inode_symlink")]
    fn inode_symlink(ctx: LsmContext, tag: TaskTag) -> i32 {
        let dentry: *const u8 = ctx.arg(1);
        guard_dentry(dentry as u64, tag, DenyKind::FileChange)
    }
}
