use aya_ebpf::{macros::lsm, programs::LsmContext};
use kya_common::event::DenyKind;

use crate::{
    decision::ALLOW,
    protect::guard_dentry,
    tagging::{current_task, tag_of},
};

/// `inode_symlink(dir, dentry, old_name)`: an agent cannot put a symbolic link at a protected path or inside a protected tree (a unit file or a state file that points at a file of the agent's own).
///
/// Untagged tasks leave after one lookup. Denies with EPERM and an event; a kernel read error
/// denies too (fail closed).
#[lsm(hook = "inode_symlink")]
pub fn inode_symlink(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(3);
    if previous != ALLOW {
        return previous;
    }
    let Some(tag) = tag_of(current_task()) else {
        return ALLOW;
    };
    let dentry: *const u8 = ctx.arg(1);
    guard_dentry(dentry as u64, tag, DenyKind::FileChange)
}
