use kya_common::mounts::op;

use super::agent_hook;
use crate::mounts::guard;

agent_hook! {
    /// `sb_pivotroot(old_path, new_path)`: `pivot_root(2)`. An agent may change its root mount
    /// only in a mount namespace it made for itself (the kernel itself refuses a pivot that
    /// involves shared mounts).
    ///
    /// Denies with EPERM and an event; a kernel read error denies too (fail closed).
    #[lsm(hook = "sb_pivotroot")]
    fn sb_pivotroot(ctx: LsmContext, tag: TaskTag) -> i32 {
        guard(tag, op::PIVOT_ROOT, || Ok(false))
    }
}
