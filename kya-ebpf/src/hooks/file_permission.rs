use kya_common::event::DenyKind;

use super::agent_hook;
use crate::protect::guard_file;

/// `MAY_WRITE` and `MAY_APPEND` in the mask: the access writes.
const MAY_WRITE: i32 = 0x2;
const MAY_APPEND: i32 = 0x8;

agent_hook! {
    /// `file_permission(file, mask)`: every read or write through a descriptor (read, pread,
    /// readv, sendfile, splice, copy_file_range, io_uring and AIO reads all pass here), so a
    /// descriptor an agent inherited, received over a socket or opened before it was tagged is
    /// useless on a protected file.
    ///
    /// Denies with EPERM and an event; a kernel read error denies too (fail closed).
    #[lsm(hook = "file_permission")]
    fn file_permission(ctx: LsmContext, tag: TaskTag) -> i32 {
        let file: *const u8 = ctx.arg(0);
        let mask: i32 = ctx.arg(1);
        guard_file(
            file as u64,
            tag,
            DenyKind::FileAccess,
            mask & (MAY_WRITE | MAY_APPEND) != 0,
        )
    }
}
