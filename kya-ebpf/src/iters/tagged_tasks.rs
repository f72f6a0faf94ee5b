use kya_common::{maps::tag_error, tag::TaggedTaskRecord};

use super::TaskIterContext;
use crate::{kernel, maps::count_error, tagging::tag_of};

/// Writes one `TaggedTaskRecord` for every tagged task: the daemon's view of who is an agent.
#[unsafe(no_mangle)]
#[unsafe(link_section = "iter/task")]
pub extern "C" fn tagged_tasks(ctx: *const TaskIterContext) -> i32 {
    // SAFETY: the kernel passes a valid `bpf_iter__task`.
    let ctx = unsafe { &*ctx };
    let Some(task) = ctx.task() else {
        return 0;
    };
    let Some(tag) = tag_of(task) else {
        return 0;
    };
    let Ok((pid, tgid)) = kernel::task_ids(task) else {
        count_error(tag_error::KERNEL_READ);
        return 0;
    };
    ctx.write(&TaggedTaskRecord { tgid, pid, tag });
    0
}
