use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use kya_common::maps::tag_error;

use crate::{
    maps::count_error,
    tagging::{has_cgroup_rules, match_cgroup, record_new, tag_of},
};

/// `cgroup_attach_task(dst_cgrp, path, task, threadgroup)`: a task moved into an agent's cgroup
/// subtree becomes that agent.
///
/// Without cgroup rules it leaves after reading their count (no lookup). A tracepoint cannot
/// refuse the move: when the tag cannot be recorded or the destination cannot be read, the
/// error is counted (`TAG_ERRORS`) and the task is matched again by its cgroup when it next
/// executes a program.
#[btf_tracepoint(function = "cgroup_attach_task")]
pub fn cgroup_attach_task(ctx: BtfTracePointContext) -> i32 {
    if cfg!(feature = "floor") || !has_cgroup_rules() {
        return 0;
    }
    let destination: *const u8 = ctx.arg(0);
    let task: *const u8 = ctx.arg(2);
    let task = task as u64;
    if tag_of(task).is_some() {
        return 0;
    }
    match match_cgroup(destination as u64) {
        Ok(Some(tag)) => {
            if record_new(task, &tag).is_err() {
                count_error(tag_error::CGROUP_INSERT);
            }
        }
        Ok(None) => {}
        Err(_) => count_error(tag_error::KERNEL_READ),
    }
    0
}
