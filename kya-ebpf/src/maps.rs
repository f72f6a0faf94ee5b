//! Every map of the kernel programs, with who writes it and who reads it.
use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, PerCpuArray},
};
use kya_common::{
    maps::{
        MAX_ADOPT_REQUESTS, MAX_CGROUP_RULES, MAX_EXE_RULES, MAX_TAGGED_TASKS, MAX_UID_RULES,
        tag_error,
    },
    tag::{InodeKey, TaskTag},
};

/// Agent tag of every agent task, keyed by the address of its `task_struct`.
/// Written by `task_alloc` (inheritance), the match hooks and the adoption iterator; entries are
/// removed by `task_free`. Read by every hook and by the listing iterator.
#[map]
pub static TASK_TAGS: HashMap<u64, TaskTag> = HashMap::with_max_entries(MAX_TAGGED_TASKS, 0);

/// Executable identities that tag the task executing them; value is the agent id.
/// Written by the daemon; read by `bprm_check_security`.
#[map]
pub static EXE_RULES: HashMap<InodeKey, u32> = HashMap::with_max_entries(MAX_EXE_RULES, 0);

/// User ids whose processes are agents; value is the agent id.
/// Written by the daemon; read by `bprm_check_security`, `task_alloc` and `task_fix_setuid`.
#[map]
pub static UID_RULES: HashMap<u32, u32> = HashMap::with_max_entries(MAX_UID_RULES, 0);

/// cgroup v2 ids whose subtrees are agents; value is the agent id.
/// Written by the daemon; read by the match hooks and `cgroup_attach_task`.
#[map]
pub static CGROUP_RULES: HashMap<u64, u32> = HashMap::with_max_entries(MAX_CGROUP_RULES, 0);

/// Index 0: the deepest cgroup level named by a rule (0 when there are none), so the ancestor
/// walk costs nothing on hosts without cgroup rules. Written by the daemon.
#[map]
pub static CGROUP_DEPTH: Array<u32> = Array::with_max_entries(1, 0);

/// Thread ids the daemon wants tagged (processes that predate it, `kya run`), with their tag.
/// Written and cleared by the daemon; read by the `adopt_tasks` iterator.
#[map]
pub static ADOPT_REQUESTS: HashMap<u32, TaskTag> = HashMap::with_max_entries(MAX_ADOPT_REQUESTS, 0);

/// Counters of internal errors, indexed by `kya_common::maps::tag_error`, one per CPU so
/// increments need no atomics. Read (and summed) by the daemon.
#[map]
pub static TAG_ERRORS: PerCpuArray<u64> = PerCpuArray::with_max_entries(tag_error::COUNT, 0);

/// Adds one to an internal error counter.
pub fn count_error(index: u32) {
    if let Some(counter) = TAG_ERRORS.get_ptr_mut(index) {
        // SAFETY: the slot belongs to this CPU and the program cannot be preempted on it.
        unsafe { *counter += 1 };
    }
}
