//! Kernel struct field offsets that the kernel programs need.
//!
//! Rust eBPF has no CO-RE, so the daemon resolves these from the running kernel's BTF
//! (`/sys/kernel/btf/vmlinux`) and sets them as read-only globals before loading.

/// Global names in the kernel object, set by the loader with `EbpfLoader::set_global`.
pub mod global {
    pub const TASK_PID: &str = "TASK_PID_OFFSET";
    pub const TASK_TGID: &str = "TASK_TGID_OFFSET";
    pub const BPRM_FILE: &str = "BPRM_FILE_OFFSET";
    pub const FILE_INODE: &str = "FILE_INODE_OFFSET";
    pub const INODE_INO: &str = "INODE_INO_OFFSET";
    pub const INODE_SB: &str = "INODE_SB_OFFSET";
    pub const SB_DEV: &str = "SB_DEV_OFFSET";
    pub const CRED_UID: &str = "CRED_UID_OFFSET";
    pub const CRED_EUID: &str = "CRED_EUID_OFFSET";
    pub const CGROUP_KN: &str = "CGROUP_KN_OFFSET";
    pub const CGROUP_LEVEL: &str = "CGROUP_LEVEL_OFFSET";
    pub const CGROUP_ANCESTORS: &str = "CGROUP_ANCESTORS_OFFSET";
    pub const KERNFS_NODE_ID: &str = "KERNFS_NODE_ID_OFFSET";
    pub const TASK_CGROUPS: &str = "TASK_CGROUPS_OFFSET";
    pub const CSS_SET_DFL_CGRP: &str = "CSS_SET_DFL_CGRP_OFFSET";
    pub const FILE_DENTRY: &str = "FILE_DENTRY_OFFSET";
    pub const DENTRY_PARENT: &str = "DENTRY_PARENT_OFFSET";
    pub const DENTRY_INODE: &str = "DENTRY_INODE_OFFSET";
    pub const DENTRY_NAME: &str = "DENTRY_NAME_OFFSET";
    pub const DENTRY_NAME_HASH_LEN: &str = "DENTRY_NAME_HASH_LEN_OFFSET";
    pub const DENTRY_FLAGS: &str = "DENTRY_FLAGS_OFFSET";
    pub const MSGHDR_NAME: &str = "MSGHDR_NAME_OFFSET";
    pub const SOCKET_SK: &str = "SOCKET_SK_OFFSET";
    pub const SOCKET_TYPE: &str = "SOCKET_TYPE_OFFSET";
    pub const SK_FAMILY: &str = "SK_FAMILY_OFFSET";
    pub const SK_DADDR: &str = "SK_DADDR_OFFSET";
    pub const SK_DPORT: &str = "SK_DPORT_OFFSET";
    pub const SK_V6_DADDR: &str = "SK_V6_DADDR_OFFSET";
    pub const UNIX_PATH_DENTRY: &str = "UNIX_PATH_DENTRY_OFFSET";
    pub const FILE_MODE: &str = "FILE_MODE_OFFSET";
    pub const PATH_DENTRY: &str = "PATH_DENTRY_OFFSET";
    pub const SOCKET_STATE: &str = "SOCKET_STATE_OFFSET";
    pub const SK_PROTOCOL: &str = "SK_PROTOCOL_OFFSET";
    pub const SOCKET_INODE: &str = "SOCKET_INODE_OFFSET";
    pub const INODE_MODE: &str = "INODE_MODE_OFFSET";
    pub const INODE_RDEV: &str = "INODE_RDEV_OFFSET";
    pub const SB_MAGIC: &str = "SB_MAGIC_OFFSET";
    pub const FILE_PRIVATE_DATA: &str = "FILE_PRIVATE_DATA_OFFSET";
    pub const SK_SOCKET: &str = "SK_SOCKET_OFFSET";
    pub const SK_PEER_PID: &str = "SK_PEER_PID_OFFSET";
    pub const PID_NUMBERS: &str = "PID_NUMBERS_OFFSET";
    pub const UPID_NR: &str = "UPID_NR_OFFSET";
    pub const UNIX_PEER: &str = "UNIX_PEER_OFFSET";
    pub const UNIX_ADDR: &str = "UNIX_ADDR_OFFSET";
    pub const UNIX_ADDRESS_LEN: &str = "UNIX_ADDRESS_LEN_OFFSET";
    pub const UNIX_ADDRESS_NAME: &str = "UNIX_ADDRESS_NAME_OFFSET";
    pub const SUN_PATH: &str = "SUN_PATH_OFFSET";
    pub const TASK_NSPROXY: &str = "TASK_NSPROXY_OFFSET";
    pub const NSPROXY_MNT_NS: &str = "NSPROXY_MNT_NS_OFFSET";
    pub const MNT_NS_SEQ: &str = "MNT_NS_SEQ_OFFSET";
    pub const PATH_MNT: &str = "PATH_MNT_OFFSET";
    pub const VFSMOUNT_FLAGS: &str = "VFSMOUNT_FLAGS_OFFSET";
    pub const MOUNT_MNT: &str = "MOUNT_MNT_OFFSET";
    pub const MOUNT_PARENT: &str = "MOUNT_PARENT_OFFSET";
    pub const INODE_PRIVATE: &str = "INODE_PRIVATE_OFFSET";
    pub const KERNFS_PARENT: &str = "KERNFS_PARENT_OFFSET";
    pub const KERNFS_PRIV: &str = "KERNFS_PRIV_OFFSET";
    pub const KERNFS_NAME: &str = "KERNFS_NAME_OFFSET";
    pub const PROC_INODE_PID: &str = "PROC_INODE_PID_OFFSET";
    pub const PROC_INODE_VFS_INODE: &str = "PROC_INODE_VFS_INODE_OFFSET";
    pub const PID_TASKS: &str = "PID_TASKS_OFFSET";
    pub const TASK_PID_LINKS: &str = "TASK_PID_LINKS_OFFSET";
}

/// The fields behind each global: (global, struct, field path). The fields of kernel keys,
/// which only a kernel with keys has, are in `crate::keys::FIELDS`.
/// A field path with dots walks into nested (possibly anonymous) members.
pub const FIELDS: &[(&str, &str, &str)] = &[
    (global::TASK_PID, "task_struct", "pid"),
    (global::TASK_TGID, "task_struct", "tgid"),
    (global::BPRM_FILE, "linux_binprm", "file"),
    (global::FILE_INODE, "file", "f_inode"),
    (global::INODE_INO, "inode", "i_ino"),
    (global::INODE_SB, "inode", "i_sb"),
    (global::SB_DEV, "super_block", "s_dev"),
    (global::CRED_UID, "cred", "uid"),
    (global::CRED_EUID, "cred", "euid"),
    (global::CGROUP_KN, "cgroup", "kn"),
    (global::CGROUP_LEVEL, "cgroup", "level"),
    (global::CGROUP_ANCESTORS, "cgroup", "ancestors"),
    (global::KERNFS_NODE_ID, "kernfs_node", "id"),
    (global::TASK_CGROUPS, "task_struct", "cgroups"),
    (global::CSS_SET_DFL_CGRP, "css_set", "dfl_cgrp"),
    (global::FILE_DENTRY, "file", "f_path.dentry"),
    (global::DENTRY_PARENT, "dentry", "d_parent"),
    (global::DENTRY_INODE, "dentry", "d_inode"),
    (global::DENTRY_NAME, "dentry", "d_name.name"),
    (global::DENTRY_NAME_HASH_LEN, "dentry", "d_name.hash_len"),
    (global::DENTRY_FLAGS, "dentry", "d_flags"),
    (global::MSGHDR_NAME, "msghdr", "msg_name"),
    (global::SOCKET_SK, "socket", "sk"),
    (global::SOCKET_TYPE, "socket", "type"),
    (global::SK_FAMILY, "sock", "__sk_common.skc_family"),
    (global::SK_DADDR, "sock", "__sk_common.skc_daddr"),
    (global::SK_DPORT, "sock", "__sk_common.skc_dport"),
    (global::SK_V6_DADDR, "sock", "__sk_common.skc_v6_daddr"),
    (global::UNIX_PATH_DENTRY, "unix_sock", "path.dentry"),
    (global::FILE_MODE, "file", "f_mode"),
    (global::PATH_DENTRY, "path", "dentry"),
    (global::SOCKET_STATE, "socket", "state"),
    (global::SK_PROTOCOL, "sock", "sk_protocol"),
    // A socket's inode follows it in the same allocation (`SOCK_INODE`).
    (global::SOCKET_INODE, "socket_alloc", "vfs_inode"),
    (global::INODE_MODE, "inode", "i_mode"),
    (global::INODE_RDEV, "inode", "i_rdev"),
    (global::SB_MAGIC, "super_block", "s_magic"),
    (global::FILE_PRIVATE_DATA, "file", "private_data"),
    (global::SK_SOCKET, "sock", "sk_socket"),
    (global::SK_PEER_PID, "sock", "sk_peer_pid"),
    (global::PID_NUMBERS, "pid", "numbers"),
    (global::UPID_NR, "upid", "nr"),
    (global::UNIX_PEER, "unix_sock", "peer"),
    (global::UNIX_ADDR, "unix_sock", "addr"),
    (global::UNIX_ADDRESS_LEN, "unix_address", "len"),
    (global::UNIX_ADDRESS_NAME, "unix_address", "name"),
    (global::SUN_PATH, "sockaddr_un", "sun_path"),
    // Mounts (`kya-ebpf/src/mounts.rs`): the current task's mount namespace, and whether a
    // mount propagates. `struct mount` embeds the `vfsmount` the hooks receive.
    (global::TASK_NSPROXY, "task_struct", "nsproxy"),
    (global::NSPROXY_MNT_NS, "nsproxy", "mnt_ns"),
    (global::MNT_NS_SEQ, "mnt_namespace", "seq"),
    (global::PATH_MNT, "path", "mnt"),
    (global::VFSMOUNT_FLAGS, "vfsmount", "mnt_flags"),
    (global::MOUNT_MNT, "mount", "mnt"),
    (global::MOUNT_PARENT, "mount", "mnt_parent"),
    // cgroupfs: a kernfs inode's `i_private` is its `kernfs_node`; a cgroup directory's node
    // holds the `struct cgroup` in `priv`, a control file's node is below it.
    (global::INODE_PRIVATE, "inode", "i_private"),
    (global::KERNFS_PARENT, "kernfs_node", "parent"),
    (global::KERNFS_PRIV, "kernfs_node", "priv"),
    (global::KERNFS_NAME, "kernfs_node", "name"),
    // procfs (`kya-ebpf/src/cmdline.rs`): every procfs inode is the `vfs_inode` of a
    // `proc_inode`, whose `pid` is the process a `/proc/PID` entry shows; `pid.tasks` is an
    // array of `hlist_head` (a lone `first` pointer) indexed by `PIDTYPE_PID` (0), whose entry
    // is the task's `pid_links[PIDTYPE_PID]`.
    (global::PROC_INODE_PID, "proc_inode", "pid"),
    (global::PROC_INODE_VFS_INODE, "proc_inode", "vfs_inode"),
    (global::PID_TASKS, "pid", "tasks"),
    (global::TASK_PID_LINKS, "task_struct", "pid_links"),
];
