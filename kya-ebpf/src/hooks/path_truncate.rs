use aya_ebpf::{macros::lsm, programs::LsmContext};
use kya_common::event::DenyKind;

use crate::{
    decision::ALLOW,
    protect::guard_path,
    tagging::{current_task, tag_of},
};

/// `path_truncate(path)`: an agent cannot truncate a protected file by path (`truncate(2)`,
/// or `O_TRUNC` on an open that only reads): not a credential, nor kya's config, audit trail,
/// binaries or unit file. (`ftruncate(2)` needs a descriptor open for writing, which
/// `file_open` refuses.)
///
/// Untagged tasks leave after one lookup. Denies with EPERM and an event; a kernel read error
/// denies too (fail closed).
#[lsm(hook = "path_truncate")]
pub fn path_truncate(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(1);
    if previous != ALLOW {
        return previous;
    }
    let Some(tag) = tag_of(current_task()) else {
        return ALLOW;
    };
    let path: *const u8 = ctx.arg(0);
    guard_path(path as u64, tag, DenyKind::FileChange)
}
