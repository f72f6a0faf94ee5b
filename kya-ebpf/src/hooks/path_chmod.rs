use kya_common::event::DenyKind;

use super::agent_hook;
use crate::protect::guard_path;

agent_hook! {
    /// `path_chmod(path, mode)`: an agent cannot change the mode of a protected file, by path
    /// or descriptor (making kya's config world-writable, or a binary of kya's non-executable).
    ///
    /// Denies with EPERM and an event; a kernel read error denies too (fail closed).
    #[lsm(hook = "path_chmod")]
    fn path_chmod(ctx: LsmContext, tag: TaskTag) -> i32 {
        let path: *const u8 = ctx.arg(0);
        guard_path(path as u64, tag, DenyKind::FileChange)
    }
}
