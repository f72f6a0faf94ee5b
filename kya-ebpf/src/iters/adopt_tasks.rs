use kya_common::maps::tag_error;

use super::TaskIterContext;
use crate::{
    kernel,
    maps::{ADOPT_REQUESTS, count_error},
    tagging::record_new,
};

/// Tags the tasks whose thread ids the daemon put in `ADOPT_REQUESTS`: processes that were
/// running before the daemon started, and `kya run`. A task that is already tagged keeps its
/// agent. Failures are counted; the daemon checks the result with `tagged_tasks` afterwards.
#[unsafe(no_mangle)]
#[unsafe(link_section = "iter/task")]
pub extern "C" fn adopt_tasks(ctx: *const TaskIterContext) -> i32 {
    // SAFETY: the kernel passes a valid `bpf_iter__task`.
    let ctx = unsafe { &*ctx };
    let Some(task) = ctx.task() else {
        return 0;
    };
    let Ok((pid, _tgid)) = kernel::task_ids(task) else {
        count_error(tag_error::KERNEL_READ);
        return 0;
    };
    // SAFETY: the value is copied out.
    let Some(tag) = (unsafe { ADOPT_REQUESTS.get(&pid) }).copied() else {
        return 0;
    };
    if record_new(task, &tag).is_err() {
        count_error(tag_error::FORK_INSERT);
    }
    0
}
