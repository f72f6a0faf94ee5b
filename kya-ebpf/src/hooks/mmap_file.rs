use aya_ebpf::{macros::lsm, programs::LsmContext};
use kya_common::event::DenyKind;

use crate::{
    decision::ALLOW,
    protect::guard_file,
    tagging::{current_task, tag_of},
};

/// `mmap_file(file, reqprot, prot, flags)`: an agent cannot map a protected file into memory
/// (reads through a mapping never pass `file_permission`).
///
/// Anonymous mappings and untagged tasks are allowed. Denies with EPERM and an event; a kernel
/// read error denies too (fail closed).
#[lsm(hook = "mmap_file")]
pub fn mmap_file(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(4);
    if previous != ALLOW {
        return previous;
    }
    let Some(tag) = tag_of(current_task()) else {
        return ALLOW;
    };
    let file: *const u8 = ctx.arg(0);
    if file.is_null() {
        return ALLOW;
    }
    guard_file(file as u64, tag, DenyKind::FileMmap)
}
