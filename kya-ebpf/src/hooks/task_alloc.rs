use aya_ebpf::{macros::lsm, programs::LsmContext};
use kya_common::maps::tag_error;

use crate::{
    decision::{ALLOW, DENY},
    maps::count_error,
    tagging::{current_task, record, tag_of},
};

/// `task_alloc(task, clone_flags)`: a new task (process or thread) inherits its creator's tag.
///
/// Allows every clone of an untagged task after one lookup. Denies (fail closed) the clone of a
/// tagged task when the child's tag cannot be recorded, because an untagged child would be an
/// agent outside every rule.
#[lsm(hook = "task_alloc")]
pub fn task_alloc(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(2);
    if previous != ALLOW {
        return previous;
    }
    try_task_alloc(&ctx).unwrap_or(DENY)
}

fn try_task_alloc(ctx: &LsmContext) -> Result<i32, ()> {
    let Some(tag) = tag_of(current_task()) else {
        return Ok(ALLOW);
    };
    let child: *const u8 = ctx.arg(0);
    record(child as u64, &tag.inherited()).map_err(|_| count_error(tag_error::FORK_INSERT))?;
    Ok(ALLOW)
}
