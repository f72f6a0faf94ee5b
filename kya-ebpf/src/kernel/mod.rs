//! Reads of kernel struct fields at offsets resolved from the running kernel's BTF.
//!
//! Rust eBPF has no CO-RE: a field offset compiled in from one kernel's headers reads garbage on
//! another. The daemon resolves each offset from `/sys/kernel/btf/vmlinux` and sets these
//! read-only globals before loading (see `kya_common::offsets`). Every read can fail; callers
//! decide what a failure means for their decision.
use aya_ebpf::helpers::bpf_probe_read_kernel;
use kya_common::tag::InodeKey;

use crate::peer::AF_INET6;

pub mod typed;

macro_rules! offsets {
    ($($name:ident),* $(,)?) => {
        $(
            #[unsafe(no_mangle)]
            static $name: u32 = 0;
        )*
    };
}

offsets!(
    TASK_PID_OFFSET,
    TASK_TGID_OFFSET,
    BPRM_FILE_OFFSET,
    FILE_INODE_OFFSET,
    INODE_INO_OFFSET,
    INODE_SB_OFFSET,
    SB_DEV_OFFSET,
    CRED_UID_OFFSET,
    CRED_EUID_OFFSET,
    CGROUP_KN_OFFSET,
    CGROUP_LEVEL_OFFSET,
    CGROUP_ANCESTORS_OFFSET,
    KERNFS_NODE_ID_OFFSET,
    TASK_CGROUPS_OFFSET,
    CSS_SET_DFL_CGRP_OFFSET,
    FILE_DENTRY_OFFSET,
    DENTRY_PARENT_OFFSET,
    DENTRY_INODE_OFFSET,
    DENTRY_NAME_OFFSET,
    DENTRY_NAME_HASH_LEN_OFFSET,
    DENTRY_FLAGS_OFFSET,
    MSGHDR_NAME_OFFSET,
    SOCKET_SK_OFFSET,
    SOCKET_TYPE_OFFSET,
    SK_FAMILY_OFFSET,
    SK_DADDR_OFFSET,
    SK_DPORT_OFFSET,
    SK_V6_DADDR_OFFSET,
    UNIX_PATH_DENTRY_OFFSET,
    FILE_MODE_OFFSET,
    PATH_DENTRY_OFFSET,
    SOCKET_STATE_OFFSET,
    SK_PROTOCOL_OFFSET,
    SOCKET_INODE_OFFSET,
    INODE_MODE_OFFSET,
    INODE_RDEV_OFFSET,
    SB_MAGIC_OFFSET,
    FILE_PRIVATE_DATA_OFFSET,
    SK_SOCKET_OFFSET,
    SK_PEER_PID_OFFSET,
    PID_NUMBERS_OFFSET,
    UPID_NR_OFFSET,
    UNIX_PEER_OFFSET,
    UNIX_ADDR_OFFSET,
    UNIX_ADDRESS_LEN_OFFSET,
    UNIX_ADDRESS_NAME_OFFSET,
    SUN_PATH_OFFSET,
    INODE_PRIVATE_OFFSET,
    KERNFS_PARENT_OFFSET,
    KERNFS_PRIV_OFFSET,
    KERNFS_NAME_OFFSET,
    PROC_INODE_PID_OFFSET,
    PROC_INODE_VFS_INODE_OFFSET,
    PID_TASKS_OFFSET,
    TASK_PID_LINKS_OFFSET,
);

/// A field read from kernel memory failed.
pub struct ReadError;

#[inline(always)]
pub(crate) fn offset(global: &'static u32) -> usize {
    // SAFETY: a plain read of a global; volatile so the compiler keeps the load the loader patches.
    unsafe { core::ptr::read_volatile(global) as usize }
}

/// Reads a `T` at `offset(global)` bytes into the kernel object at `base`.
#[inline(always)]
pub(crate) fn read<T>(base: u64, global: &'static u32) -> Result<T, ReadError> {
    if base == 0 {
        return Err(ReadError);
    }
    let field = (base as usize).wrapping_add(offset(global)) as *const T;
    // SAFETY: bpf_probe_read_kernel copes with any address and reports faults as errors.
    unsafe { bpf_probe_read_kernel(field) }.map_err(|_| ReadError)
}

/// The thread id (`task->pid`) and process id (`task->tgid`) of a task.
#[inline(always)]
pub fn task_ids(task: u64) -> Result<(u32, u32), ReadError> {
    let pid: u32 = read(task, &TASK_PID_OFFSET)?;
    let tgid: u32 = read(task, &TASK_TGID_OFFSET)?;
    Ok((pid, tgid))
}

/// Identity of the file a `linux_binprm` is about to execute.
#[inline(always)]
pub fn bprm_file_identity(bprm: u64) -> Result<InodeKey, ReadError> {
    let file: u64 = read(bprm, &BPRM_FILE_OFFSET)?;
    let inode: u64 = read(file, &FILE_INODE_OFFSET)?;
    let ino: u64 = read(inode, &INODE_INO_OFFSET)?;
    let sb: u64 = read(inode, &INODE_SB_OFFSET)?;
    let dev: u32 = read(sb, &SB_DEV_OFFSET)?;
    Ok(InodeKey {
        ino,
        dev,
        padding: 0,
    })
}

/// The dentry of a `struct path`.
#[inline(always)]
pub fn path_dentry(path: u64) -> Result<u64, ReadError> {
    read(path, &PATH_DENTRY_OFFSET)
}

/// The dentry a `file` was opened through.
#[inline(always)]
pub fn file_dentry(file: u64) -> Result<u64, ReadError> {
    read(file, &FILE_DENTRY_OFFSET)
}

/// A dentry's inode number and device, or `None` for a negative dentry (no inode).
#[inline(always)]
pub fn dentry_identity(dentry: u64) -> Result<Option<(u64, u32)>, ReadError> {
    let inode: u64 = read(dentry, &DENTRY_INODE_OFFSET)?;
    if inode == 0 {
        return Ok(None);
    }
    let ino: u64 = read(inode, &INODE_INO_OFFSET)?;
    let sb: u64 = read(inode, &INODE_SB_OFFSET)?;
    let dev: u32 = read(sb, &SB_DEV_OFFSET)?;
    Ok(Some((ino, dev)))
}

/// A dentry's inode number (its device is the same as its children's).
#[inline(always)]
pub fn dentry_ino(dentry: u64) -> Result<u64, ReadError> {
    let inode: u64 = read(dentry, &DENTRY_INODE_OFFSET)?;
    read(inode, &INODE_INO_OFFSET)
}

/// A dentry's parent (itself at the root of its filesystem, and for a disconnected dentry).
#[inline(always)]
pub fn dentry_parent(dentry: u64) -> Result<u64, ReadError> {
    read(dentry, &DENTRY_PARENT_OFFSET)
}

/// `DCACHE_DISCONNECTED` in `dentry.d_flags` (the same bit in 6.1 and 6.12).
const DCACHE_DISCONNECTED: u32 = 1 << 5;

/// Whether a dentry that is its own parent stands for a file reached without a path: one that
/// `open_by_handle_at` (or an NFS export) found by its handle when no connected dentry of it
/// was cached. Its name and the directories above it are unknown. A filesystem's root, and the
/// pseudo-files of pipes and sockets, are their own parents too but are never disconnected.
#[inline(always)]
pub fn dentry_disconnected(dentry: u64) -> Result<bool, ReadError> {
    let flags: u32 = read(dentry, &DENTRY_FLAGS_OFFSET)?;
    Ok(flags & DCACHE_DISCONNECTED != 0)
}

/// Copies a dentry's name (NUL-terminated, cut to fit) into `buf`.
#[inline(always)]
pub fn dentry_name(
    dentry: u64,
    buf: &mut [u8; kya_common::protect::NAME_LEN],
) -> Result<(), ReadError> {
    let name: u64 = read(dentry, &DENTRY_NAME_OFFSET)?;
    // SAFETY: the helper copes with any address and reports faults as errors.
    unsafe { aya_ebpf::helpers::bpf_probe_read_kernel_str_bytes(name as *const u8, buf) }
        .map(|_| ())
        .map_err(|_| ReadError)
}

/// The destination address a `msghdr` names (null when the socket's own peer is meant).
#[inline(always)]
pub fn msghdr_name(msg: u64) -> Result<u64, ReadError> {
    read(msg, &MSGHDR_NAME_OFFSET)
}

/// A `struct socket`'s type (`SOCK_STREAM`, `SOCK_DGRAM`, ...).
#[inline(always)]
pub fn socket_type(socket: u64) -> Result<u16, ReadError> {
    read(socket, &SOCKET_TYPE_OFFSET)
}

/// The `struct sock` behind a `struct socket`.
#[inline(always)]
pub fn socket_sock(socket: u64) -> Result<u64, ReadError> {
    read(socket, &SOCKET_SK_OFFSET)
}

/// A connected socket's address family, peer address (canonical) and peer port (host order).
#[inline(always)]
pub fn sock_peer(sock: u64) -> Result<(u16, [u8; 16], u16), ReadError> {
    let family: u16 = read(sock, &SK_FAMILY_OFFSET)?;
    let port: u16 = read(sock, &SK_DPORT_OFFSET)?;
    let addr = if family == AF_INET6 {
        read::<[u8; 16]>(sock, &SK_V6_DADDR_OFFSET)?
    } else {
        kya_common::net::mapped_ipv4(read::<[u8; 4]>(sock, &SK_DADDR_OFFSET)?)
    };
    Ok((family, addr, u16::from_be(port)))
}

/// A `struct socket`'s state (`SS_UNCONNECTED`, `SS_CONNECTED`, ...): whether the socket
/// layer takes it as connected.
#[inline(always)]
pub fn socket_state(socket: u64) -> Result<u32, ReadError> {
    read(socket, &SOCKET_STATE_OFFSET)
}

/// A `struct sock`'s address family.
#[inline(always)]
pub fn sock_family(sock: u64) -> Result<u16, ReadError> {
    read(sock, &SK_FAMILY_OFFSET)
}

/// A `struct sock`'s protocol (`IPPROTO_TCP`, ... for IP sockets).
#[inline(always)]
pub fn sock_protocol(sock: u64) -> Result<u16, ReadError> {
    read(sock, &SK_PROTOCOL_OFFSET)
}

/// The inode number of a `struct socket`: given when the socket is allocated (from the same
/// counter as pipes' and other pseudo-files'), so a later socket that reuses the memory has
/// another.
#[inline(always)]
pub fn socket_ino(socket: u64) -> Result<u64, ReadError> {
    if socket == 0 {
        return Err(ReadError);
    }
    let inode = socket.wrapping_add(offset(&SOCKET_INODE_OFFSET) as u64);
    read(inode, &INODE_INO_OFFSET)
}

/// `S_IFMT` and `S_IFSOCK` in `inode->i_mode`.
const S_IFMT: u16 = 0o170_000;
const S_IFSOCK: u16 = 0o140_000;

/// The `struct socket` behind `file`, `None` if it is not a socket. A socket's file holds
/// the socket in `private_data` and the socket's own inode; both are checked, so a file that
/// only looks like a socket is an error, not a socket to skip.
#[inline(always)]
pub fn file_socket(file: u64) -> Result<Option<u64>, ReadError> {
    let inode: u64 = read(file, &FILE_INODE_OFFSET)?;
    let mode: u16 = read(inode, &INODE_MODE_OFFSET)?;
    if mode & S_IFMT != S_IFSOCK {
        return Ok(None);
    }
    let socket: u64 = read(file, &FILE_PRIVATE_DATA_OFFSET)?;
    if socket == 0 || socket.wrapping_add(offset(&SOCKET_INODE_OFFSET) as u64) != inode {
        return Err(ReadError);
    }
    Ok(Some(socket))
}

/// The dentry an AF_UNIX socket is bound to (0 for unbound and abstract sockets).
#[inline(always)]
pub fn unix_sock_dentry(sock: u64) -> Result<u64, ReadError> {
    read(sock, &UNIX_PATH_DENTRY_OFFSET)
}

/// The `struct socket` of a `struct sock` (0 once the socket's file is closed, or for a
/// connection not yet accepted).
#[inline(always)]
pub fn sock_socket(sock: u64) -> Result<u64, ReadError> {
    read(sock, &SK_SOCKET_OFFSET)
}

/// The process id (in the initial namespace) recorded as a socket's peer: for a listening
/// socket the process that made it listen, for a connected stream socket its server's. 0 where
/// the kernel recorded none.
#[inline(always)]
pub fn sock_peer_pid(sock: u64) -> Result<u32, ReadError> {
    let pid: u64 = read(sock, &SK_PEER_PID_OFFSET)?;
    if pid == 0 {
        return Ok(0);
    }
    pid_nr(pid)
}

/// The number of a `struct pid` in the initial namespace (`numbers[0]`).
#[inline(always)]
pub fn pid_nr(pid: u64) -> Result<u32, ReadError> {
    let upid = pid.wrapping_add(offset(&PID_NUMBERS_OFFSET) as u64);
    read(upid, &UPID_NR_OFFSET)
}

/// The `struct pid` of the process (or thread) whose `/proc/PID` entry the procfs inode
/// `inode` is (every procfs inode is the `vfs_inode` of a `struct proc_inode`). An inode of no
/// process's entry has none: an error.
#[inline(always)]
pub fn proc_inode_pid(inode: u64) -> Result<u64, ReadError> {
    if inode == 0 {
        return Err(ReadError);
    }
    let proc_inode = inode.wrapping_sub(offset(&PROC_INODE_VFS_INODE_OFFSET) as u64);
    let pid: u64 = read(proc_inode, &PROC_INODE_PID_OFFSET)?;
    if pid == 0 {
        return Err(ReadError);
    }
    Ok(pid)
}

/// The task a `struct pid` names (`pid_task(pid, PIDTYPE_PID)`), `None` once it is gone.
#[inline(always)]
pub fn pid_task(pid: u64) -> Result<Option<u64>, ReadError> {
    // `tasks[PIDTYPE_PID].first`: PIDTYPE_PID is 0 and an `hlist_head` is its `first`.
    let first: u64 = read(pid, &PID_TASKS_OFFSET)?;
    if first == 0 {
        return Ok(None);
    }
    // The node is the task's `pid_links[PIDTYPE_PID]`.
    Ok(Some(
        first.wrapping_sub(offset(&TASK_PID_LINKS_OFFSET) as u64),
    ))
}

/// The `struct sock` an AF_UNIX socket is connected to (0 if none).
#[inline(always)]
pub fn unix_peer(sock: u64) -> Result<u64, ReadError> {
    read(sock, &UNIX_PEER_OFFSET)
}

/// An AF_UNIX socket's bound address: where its `sun_path` is, and how many of its bytes are
/// used (the leading NUL of an abstract name included). `None` for an unbound socket.
#[inline(always)]
pub fn unix_sun_path(sock: u64) -> Result<Option<(u64, usize)>, ReadError> {
    let address: u64 = read(sock, &UNIX_ADDR_OFFSET)?;
    if address == 0 {
        return Ok(None);
    }
    let len: i32 = read(address, &UNIX_ADDRESS_LEN_OFFSET)?;
    let sun_path = address
        .wrapping_add(offset(&UNIX_ADDRESS_NAME_OFFSET) as u64)
        .wrapping_add(offset(&SUN_PATH_OFFSET) as u64);
    // `len` counts the whole `sockaddr_un` the socket was bound with, family included.
    let used = (len as usize).saturating_sub(offset(&SUN_PATH_OFFSET));
    Ok(Some((
        sun_path,
        used.min(kya_common::protect::UNIX_PATH_MAX),
    )))
}

/// Copies the `used` bytes of an AF_UNIX address's `sun_path` (at `sun_path`) into the start
/// of `buf`, leaving the rest of `buf` as it is.
#[inline(always)]
pub fn read_sun_path(
    sun_path: u64,
    used: usize,
    buf: &mut [u8; kya_common::protect::UNIX_PATH_MAX],
) -> Result<(), ReadError> {
    // Read back opaquely so the compiler keeps this bound check right before the copy, where
    // the verifier (6.1's in particular) needs to see the size bounded.
    // SAFETY: a plain read of a local.
    let used = unsafe { core::ptr::read_volatile(&used) };
    let Some(dst) = buf.get_mut(..used) else {
        return Err(ReadError);
    };
    // SAFETY: the helper copes with any address and reports faults as errors.
    unsafe { aya_ebpf::helpers::bpf_probe_read_kernel_buf(sun_path as *const u8, dst) }
        .map_err(|_| ReadError)
}

/// The whole `sun_path` of an AF_UNIX address (at `sun_path`), the bytes past those in use
/// included: whatever they hold, no reader looks at them.
#[inline(always)]
pub fn sun_path_bytes(
    sun_path: u64,
) -> Result<[u8; kya_common::protect::UNIX_PATH_MAX], ReadError> {
    // SAFETY: the helper copes with any address and reports faults as errors.
    unsafe { bpf_probe_read_kernel(sun_path as *const [u8; kya_common::protect::UNIX_PATH_MAX]) }
        .map_err(|_| ReadError)
}

/// Reads `len` bytes of plain memory the kernel handed to a hook (a `sockaddr` copy).
#[inline(always)]
pub fn read_plain<T>(address: u64, offset: usize) -> Result<T, ReadError> {
    if address == 0 {
        return Err(ReadError);
    }
    // SAFETY: bpf_probe_read_kernel copes with any address and reports faults as errors.
    unsafe { bpf_probe_read_kernel((address as usize + offset) as *const T) }.map_err(|_| ReadError)
}

/// Real and effective uid of a `cred`.
#[inline(always)]
pub fn cred_uids(cred: u64) -> Result<(u32, u32), ReadError> {
    Ok((
        read(cred, &CRED_UID_OFFSET)?,
        read(cred, &CRED_EUID_OFFSET)?,
    ))
}

/// The cgroup v2 cgroup a task belongs to.
#[inline(always)]
pub fn task_cgroup(task: u64) -> Result<u64, ReadError> {
    let css_set: u64 = read(task, &TASK_CGROUPS_OFFSET)?;
    read(css_set, &CSS_SET_DFL_CGRP_OFFSET)
}

/// Depth of a cgroup below the root (the root is level 0).
#[inline(always)]
pub fn cgroup_level(cgroup: u64) -> Result<u32, ReadError> {
    read(cgroup, &CGROUP_LEVEL_OFFSET)
}

/// The id of `cgroup`'s ancestor at `level` (its own id when `level` is its level).
#[inline(always)]
pub fn cgroup_ancestor_id(cgroup: u64, level: u32) -> Result<u64, ReadError> {
    cgroup_id(cgroup_ancestor(cgroup, level)?)
}

/// `cgroup`'s ancestor at `level` (`cgroup` itself when `level` is its level).
#[inline(always)]
pub fn cgroup_ancestor(cgroup: u64, level: u32) -> Result<u64, ReadError> {
    let slot = (cgroup as usize)
        .wrapping_add(offset(&CGROUP_ANCESTORS_OFFSET))
        .wrapping_add(level as usize * core::mem::size_of::<u64>());
    // SAFETY: bpf_probe_read_kernel copes with any address and reports faults as errors.
    unsafe { bpf_probe_read_kernel(slot as *const u64) }.map_err(|_| ReadError)
}

/// A cgroup's id (its directory's kernfs node id, what `bpf_get_current_cgroup_id` returns).
#[inline(always)]
pub fn cgroup_id(cgroup: u64) -> Result<u64, ReadError> {
    let kn: u64 = read(cgroup, &CGROUP_KN_OFFSET)?;
    read(kn, &KERNFS_NODE_ID_OFFSET)
}

/// The inode behind `file`.
#[inline(always)]
pub fn file_inode(file: u64) -> Result<u64, ReadError> {
    read(file, &FILE_INODE_OFFSET)
}

/// The device a device node stands for (`i_rdev`, kernel encoding).
#[inline(always)]
pub fn inode_rdev(inode: u64) -> Result<u32, ReadError> {
    read(inode, &INODE_RDEV_OFFSET)
}

/// The magic number of the filesystem an inode is on (`s_magic`: procfs, sysfs, ...).
#[inline(always)]
pub fn inode_fs_magic(inode: u64) -> Result<u64, ReadError> {
    let sb: u64 = read(inode, &INODE_SB_OFFSET)?;
    read(sb, &SB_MAGIC_OFFSET)
}

/// An inode's number and its filesystem's device.
#[inline(always)]
pub fn inode_identity(inode: u64) -> Result<(u64, u32), ReadError> {
    let ino: u64 = read(inode, &INODE_INO_OFFSET)?;
    let sb: u64 = read(inode, &INODE_SB_OFFSET)?;
    let dev: u32 = read(sb, &SB_DEV_OFFSET)?;
    Ok((ino, dev))
}

/// The start of a dentry's name as two words: its first bytes, NUL-terminated (cut to fit
/// `kya_common::facility::SHORT_NAME_LEN`), then zeros.
#[inline(always)]
pub fn dentry_short_name(dentry: u64) -> Result<[u64; 2], ReadError> {
    let name: u64 = read(dentry, &DENTRY_NAME_OFFSET)?;
    let mut words = [0_u64; 2];
    // Zeroed one word at a time: the compiler would make a call to `memset` of two zero
    // stores, and a call adds its stack to the caller's (see `facilities`).
    // SAFETY: both words are this function's.
    unsafe {
        core::ptr::write_volatile(&raw mut words[0], 0);
        core::ptr::write_volatile(&raw mut words[1], 0);
    }
    // SAFETY: the helper writes at most the 16 bytes given and copes with any source address.
    let copied = unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_kernel_str(
            words.as_mut_ptr().cast(),
            16,
            name as *const core::ffi::c_void,
        )
    };
    if copied < 0 {
        return Err(ReadError);
    }
    Ok(words)
}

/// Copies a NUL-terminated kernel string (cut to fit) into `buf`.
#[inline(always)]
pub fn kernel_str(
    address: u64,
    buf: &mut [u8; kya_common::protect::NAME_LEN],
) -> Result<(), ReadError> {
    if address == 0 {
        return Err(ReadError);
    }
    // SAFETY: the helper copes with any address and reports faults as errors.
    unsafe { aya_ebpf::helpers::bpf_probe_read_kernel_str_bytes(address as *const u8, buf) }
        .map(|_| ())
        .map_err(|_| ReadError)
}

/// `S_IFDIR` in `inode->i_mode`.
const S_IFDIR: u16 = 0o040_000;

/// For an inode of the cgroup2 filesystem: the `struct cgroup` it belongs to (a cgroup's
/// directory, or the cgroup whose control file it is) and, for a control file, its name
/// (NUL-terminated, cut to fit) in `name`; a directory leaves `name` empty.
#[inline(always)]
pub fn cgroupfs_inode_cgroup<const N: usize>(
    inode: u64,
    name: &mut [u8; N],
) -> Result<u64, ReadError> {
    let kn: u64 = read(inode, &INODE_PRIVATE_OFFSET)?;
    let mode: u16 = read(inode, &INODE_MODE_OFFSET)?;
    let dir = if mode & S_IFMT == S_IFDIR {
        kn
    } else {
        let file_name: u64 = read(kn, &KERNFS_NAME_OFFSET)?;
        // SAFETY: the helper copes with any address and reports faults as errors.
        unsafe { aya_ebpf::helpers::bpf_probe_read_kernel_str_bytes(file_name as *const u8, name) }
            .map_err(|_| ReadError)?;
        read(kn, &KERNFS_PARENT_OFFSET)?
    };
    read(dir, &KERNFS_PRIV_OFFSET)
}
