use aya_ebpf::{macros::lsm, programs::LsmContext};
use kya_common::event::DenyKind;

use crate::{
    decision::ALLOW,
    protect::guard_dentry,
    tagging::{current_task, tag_of},
};

/// `inode_unlink(dir, dentry)`: an agent cannot delete a protected file: a credential, kya's
/// audit trail, or one of the pins that keep kya's programs attached.
///
/// Untagged tasks leave after one lookup. Denies with EPERM and an event; a kernel read error
/// denies too (fail closed).
#[lsm(hook = "inode_unlink")]
pub fn inode_unlink(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(2);
    if previous != ALLOW {
        return previous;
    }
    let Some(tag) = tag_of(current_task()) else {
        return ALLOW;
    };
    let dentry: *const u8 = ctx.arg(1);
    guard_dentry(dentry as u64, tag, DenyKind::FileUnlink)
}
