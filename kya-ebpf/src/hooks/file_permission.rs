use aya_ebpf::{macros::lsm, programs::LsmContext};
use kya_common::event::DenyKind;

use crate::{
    decision::ALLOW,
    protect::guard_file,
    tagging::{current_task, tag_of},
};

/// `MAY_WRITE` and `MAY_APPEND` in the mask: the access writes.
const MAY_WRITE: i32 = 0x2;
const MAY_APPEND: i32 = 0x8;

/// `file_permission(file, mask)`: every read or write through a descriptor (read, pread,
/// readv, sendfile, splice, copy_file_range, io_uring and AIO reads all pass here), so a
/// descriptor an agent inherited, received over a socket or opened before it was tagged is
/// useless on a protected file.
///
/// Untagged tasks leave after one lookup. Denies with EPERM and an event; a kernel read error
/// denies too (fail closed).
#[lsm(hook = "file_permission")]
pub fn file_permission(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(2);
    if previous != ALLOW {
        return previous;
    }
    let Some(tag) = tag_of(current_task()) else {
        return ALLOW;
    };
    let file: *const u8 = ctx.arg(0);
    let mask: i32 = ctx.arg(1);
    guard_file(
        file as u64,
        tag,
        DenyKind::FileAccess,
        mask & (MAY_WRITE | MAY_APPEND) != 0,
    )
}
