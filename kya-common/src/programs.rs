//! Names of the kernel programs and what each attaches to, shared by both sides.

/// BPF LSM programs: (program name, LSM hook). Each program is named after its hook.
pub const LSM_HOOKS: &[&str] = &[
    "task_alloc",
    "task_free",
    "bprm_check_security",
    "task_fix_setuid",
    "file_open",
    "file_permission",
    "mmap_file",
    "inode_create",
    "inode_symlink",
    "inode_mkdir",
    "inode_mknod",
    "inode_link",
    "inode_rename",
    "inode_unlink",
    "path_truncate",
    "path_chmod",
    "path_chown",
    "ptrace_access_check",
    "task_kill",
    "bpf",
    "socket_create",
    "socket_post_create",
    "socket_connect",
    "socket_sendmsg",
    "socket_accept",
    "unix_stream_connect",
    "unix_may_send",
];

/// BTF tracepoints: each program is named after its tracepoint.
pub const BTF_TRACEPOINTS: &[&str] = &["cgroup_attach_task", "sched_process_fork"];

/// Task iterator that tags the thread ids listed in `ADOPT_REQUESTS`.
pub const ADOPT_TASKS_ITER: &str = "adopt_tasks";
/// Task iterator that lists every tagged task as `TaggedTaskRecord`s.
pub const TAGGED_TASKS_ITER: &str = "tagged_tasks";
