use aya_ebpf::{macros::lsm, programs::LsmContext};
use kya_common::event::DenyKind;

use crate::{
    decision::ALLOW,
    protect::guard_path,
    tagging::{current_task, tag_of},
};

/// `path_chmod(path, mode)`: an agent cannot change the mode of a protected file, by path or
/// descriptor (making kya's config world-writable, or a binary of kya's non-executable).
///
/// Untagged tasks leave after one lookup. Denies with EPERM and an event; a kernel read error
/// denies too (fail closed).
#[lsm(hook = "path_chmod")]
pub fn path_chmod(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(2);
    if previous != ALLOW {
        return previous;
    }
    let Some(tag) = tag_of(current_task()) else {
        return ALLOW;
    };
    let path: *const u8 = ctx.arg(0);
    guard_path(path as u64, tag, DenyKind::FileChange)
}
