use kya_common::event::DenyKind;

use super::agent_hook;
use crate::protect::guard_path;

agent_hook! {
    /// `path_chown(path, uid, gid)`: an agent cannot change the owner of a protected file, by
    /// path or descriptor (handing kya's config or a credential to its own user).
    ///
    /// Denies with EPERM and an event; a kernel read error denies too (fail closed).
    #[lsm(hook = "path_chown")]
    fn path_chown(ctx: LsmContext, tag: TaskTag) -> i32 {
        let path: *const u8 = ctx.arg(0);
        guard_path(path as u64, tag, DenyKind::FileChange)
    }
}
