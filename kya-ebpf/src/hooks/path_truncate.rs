use kya_common::event::DenyKind;

use super::agent_hook;
use crate::protect::guard_path;

agent_hook! {
    /// `path_truncate(path)`: an agent cannot truncate a protected file by path
    /// (`truncate(2)`; on 6.1 also `ftruncate(2)` and `O_TRUNC` on an open, even one that only
    /// reads, which later kernels check through `file_truncate`): not a credential, nor kya's
    /// config, audit trail, binaries or unit file, nor a foothold.
    ///
    /// Denies with EPERM and an event; a kernel read error denies too (fail closed).
    #[lsm(hook = "path_truncate")]
    fn path_truncate(ctx: LsmContext, tag: TaskTag) -> i32 {
        let path: *const u8 = ctx.arg(0);
        guard_path(path as u64, tag, DenyKind::FileChange)
    }
}
