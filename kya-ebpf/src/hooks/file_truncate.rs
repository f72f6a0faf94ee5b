use kya_common::event::{DenyKind, MatchedBy};

use super::agent_hook;
use crate::{
    kernel,
    protect::{Denial, Object, guard_dentry, refuse},
};

agent_hook! {
    /// `file_truncate(file)` (6.2 and later, where it replaced `path_truncate` for these):
    /// an agent cannot truncate a protected file through a descriptor (`ftruncate(2)` on one it
    /// inherited or received open for writing) nor by `O_TRUNC` on an open, even one that only
    /// reads (which `file_open` lets through for files protected from changes only: kya's
    /// binaries, footholds).
    ///
    /// Denies with EPERM and an event; a kernel read error denies too (fail closed).
    #[lsm(hook = "file_truncate")]
    fn file_truncate(ctx: LsmContext, tag: TaskTag) -> i32 {
        let file: *const u8 = ctx.arg(0);
        match kernel::file_dentry(file as u64) {
            Ok(dentry) => guard_dentry(dentry, tag, DenyKind::FileChange),
            // Fail closed: the caller is an agent and the file may be kya's own.
            Err(_) => refuse(
                DenyKind::FileChange,
                tag,
                Denial::without_rule(MatchedBy::ReadError),
                &Object::empty(),
            ),
        }
    }
}
