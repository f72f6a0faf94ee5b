use kya_common::event::DenyKind;

use super::agent_hook;
use crate::{kernel, protect::guard_file};

agent_hook! {
    /// `file_open(file)`: an agent cannot open a file protected from it, whatever path, link,
    /// bind mount or `/proc/PID/root` it comes through (the check is on the object and the
    /// directories above it).
    ///
    /// Denies with EPERM and an event; a kernel read error denies too (fail closed).
    #[lsm(hook = "file_open")]
    fn file_open(ctx: LsmContext, tag: TaskTag) -> i32 {
        let file: *const u8 = ctx.arg(0);
        // A mode that cannot be read counts as writing (fail closed).
        let writing = kernel::file_open_for_writing(file as u64).unwrap_or(true);
        guard_file(file as u64, tag, DenyKind::FileOpen, writing)
    }
}
