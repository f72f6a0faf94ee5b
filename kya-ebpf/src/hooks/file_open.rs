use aya_ebpf::{macros::lsm, programs::LsmContext};
use kya_common::event::DenyKind;

use crate::{
    decision::ALLOW,
    kernel,
    protect::guard_file,
    tagging::{current_task, tag_of},
};

/// `file_open(file)`: an agent cannot open a file protected from it, whatever path, link, bind
/// mount or `/proc/PID/root` it comes through (the check is on the object and the directories
/// above it).
///
/// Untagged tasks leave after one lookup. Denies with EPERM and an event; a kernel read error
/// denies too (fail closed).
#[lsm(hook = "file_open")]
pub fn file_open(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(1);
    if previous != ALLOW {
        return previous;
    }
    let Some(tag) = tag_of(current_task()) else {
        return ALLOW;
    };
    let file: *const u8 = ctx.arg(0);
    // A mode that cannot be read counts as writing (fail closed).
    let writing = kernel::file_open_for_writing(file as u64).unwrap_or(true);
    guard_file(file as u64, tag, DenyKind::FileOpen, writing)
}
