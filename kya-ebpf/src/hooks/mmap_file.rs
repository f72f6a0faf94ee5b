use kya_common::event::DenyKind;

use super::agent_hook;
use crate::{decision::ALLOW, facilities, protect::guard_file};

/// `PROT_WRITE` and `MAP_SHARED` (also set in `MAP_SHARED_VALIDATE`).
const PROT_WRITE: u64 = 0x2;
const MAP_SHARED: u64 = 0x1;

agent_hook! {
    /// `mmap_file(file, reqprot, prot, flags)`: an agent cannot map a protected file into
    /// memory (reads through a mapping never pass `file_permission`), nor map raw memory or a
    /// disk through a descriptor it did not open itself.
    ///
    /// Anonymous mappings are allowed. Denies with EPERM and an event; a kernel read error
    /// denies too (fail closed).
    #[lsm(hook = "mmap_file")]
    fn mmap_file(ctx: LsmContext, tag: TaskTag) -> i32 {
        let file: *const u8 = ctx.arg(0);
        if file.is_null() {
            return ALLOW;
        }
        // Only a shared writable mapping writes to the file.
        let prot: u64 = ctx.arg(2);
        let flags: u64 = ctx.arg(3);
        let writing = prot & PROT_WRITE != 0 && flags & MAP_SHARED != 0;
        let file = file as u64;
        if let Some(verdict) = facilities::guard_file(file, tag, DenyKind::FileMmap, writing) {
            return verdict;
        }
        guard_file(file, tag, DenyKind::FileMmap, writing, true)
    }
}
