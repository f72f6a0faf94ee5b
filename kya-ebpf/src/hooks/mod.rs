//! One attached program per file, each named after the kernel hook it attaches to.
mod bprm_check_security;
mod cgroup_attach_task;
mod sched_process_fork;
mod task_alloc;
mod task_fix_setuid;
mod task_free;
