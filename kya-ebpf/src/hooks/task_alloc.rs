use aya_ebpf::programs::LsmContext;
use kya_common::{maps::tag_error, tag::TaskTag};

use super::agent_hook;
use crate::{
    decision::{ALLOW, DENY},
    maps::count_error,
    tagging::record,
};

agent_hook! {
    /// `task_alloc(task, clone_flags)`: a new task (process or thread) inherits its creator's
    /// tag.
    ///
    /// Allows every clone of an untagged task. Denies (fail closed) the clone of a tagged task
    /// when the child's tag cannot be recorded, because an untagged child would be an agent
    /// outside every rule.
    #[lsm(hook = "task_alloc")]
    fn task_alloc(ctx: LsmContext, tag: TaskTag) -> i32 {
        try_task_alloc(&ctx, tag).unwrap_or(DENY)
    }
}

fn try_task_alloc(ctx: &LsmContext, tag: TaskTag) -> Result<i32, ()> {
    let child: *const u8 = ctx.arg(0);
    record(child as u64, &tag.inherited()).map_err(|_| count_error(tag_error::FORK_INSERT))?;
    Ok(ALLOW)
}
