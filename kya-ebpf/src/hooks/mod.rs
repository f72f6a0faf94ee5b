//! One attached program per file, each named after the kernel hook it attaches to.
mod bprm_check_security;
mod cgroup_attach_task;
mod file_open;
mod file_permission;
mod inode_link;
mod inode_rename;
mod mmap_file;
mod ptrace_access_check;
mod sched_process_fork;
mod task_alloc;
mod task_fix_setuid;
mod task_free;
