use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use kya_common::maps::tag_error;

use crate::{
    kernel,
    maps::count_error,
    tagging::{has_cgroup_rules, match_cgroup, record_new, tag_of},
};

/// `sched_process_fork(parent, child)`: a new task that an untagged parent created inside an
/// agent's cgroup subtree (`clone3` with `CLONE_INTO_CGROUP` puts it there directly, with no
/// `cgroup_attach_task`) becomes that agent before it first runs.
///
/// Runs for every fork: without cgroup rules it leaves after reading their count (no lookup);
/// children of tagged tasks were already tagged by `task_alloc` and leave after one lookup. A
/// tracepoint cannot refuse the fork: when the child's cgroup cannot be read or its tag cannot
/// be recorded, the error is counted (`TAG_ERRORS`) and the child is matched again by its
/// cgroup when it executes a program.
#[btf_tracepoint(function = "sched_process_fork")]
pub fn sched_process_fork(ctx: BtfTracePointContext) -> i32 {
    if cfg!(feature = "floor") || !has_cgroup_rules() {
        return 0;
    }
    let child: *const u8 = ctx.arg(1);
    let child = child as u64;
    if tag_of(child).is_some() {
        return 0;
    }
    let matched = kernel::task_cgroup(child).and_then(match_cgroup);
    match matched {
        Ok(Some(tag)) => {
            if record_new(child, &tag).is_err() {
                count_error(tag_error::CGROUP_INSERT);
            }
        }
        Ok(None) => {}
        Err(_) => count_error(tag_error::KERNEL_READ),
    }
    0
}
