//! Mounts: an agent changes mounts only inside a mount namespace it made for itself, and there
//! only where the change does not propagate out of it; anything else would change what
//! processes outside the agent see (a tmpfs over `/etc/kya`, a bind mount over kya's binary,
//! `/sys/fs/bpf` unmounted).
//!
//! The namespaces agents make are recorded as they are made (`copy_mnt_ns`, for `unshare` and
//! `clone` with `CLONE_NEWNS`) in `OWN_MOUNT_NAMESPACES`, by the namespace's sequence number,
//! which the kernel never reuses: a namespace freed and another allocated at its address is
//! not taken for the agent's. The mount hooks then read the caller's namespace
//! (`current->nsproxy->mnt_ns`) and, inside an agent's own one, whether the mount changed is
//! shared (`MNT_SHARED`: its peers, possibly in other namespaces, see every mount and unmount
//! below it).
use kya_common::{
    event::{DenyKind, MatchedBy},
    maps::tag_error,
    mounts::{CLONE_NEWNS, MNT_SHARED},
    tag::TaskTag,
};

use crate::{
    decision::{ALLOW, DENY},
    events::report,
    kernel::{ReadError, offset, read},
    maps::{OWN_MOUNT_NAMESPACES, count_error},
    tagging::current_task,
};

macro_rules! offsets {
    ($($name:ident),* $(,)?) => {
        $(
            #[unsafe(no_mangle)]
            static $name: u32 = 0;
        )*
    };
}

// Set by the loader from BTF (`kya_common::offsets`).
offsets!(
    TASK_NSPROXY_OFFSET,
    NSPROXY_MNT_NS_OFFSET,
    MNT_NS_SEQ_OFFSET,
    PATH_MNT_OFFSET,
    VFSMOUNT_FLAGS_OFFSET,
    MOUNT_MNT_OFFSET,
    MOUNT_PARENT_OFFSET,
);

/// Largest errno an `ERR_PTR` encodes.
const MAX_ERRNO: u64 = 4_095;

/// Records the mount namespace `copy_mnt_ns` returned (`new_ns`) as agent `tag`'s own, when
/// `flags` asked for a new one. A namespace that cannot be read or recorded is counted
/// (`tag_error::KERNEL_READ`) and stays unknown: the agent's mount operations in it are refused.
#[inline(always)]
pub fn record_namespace(tag: TaskTag, flags: u64, new_ns: u64) {
    // Without CLONE_NEWNS the caller's own namespace comes back; an error is an ERR_PTR.
    if flags & CLONE_NEWNS == 0 || new_ns == 0 || new_ns > MAX_ERRNO.wrapping_neg() {
        return;
    }
    let recorded = namespace_seq(new_ns).and_then(|seq| {
        OWN_MOUNT_NAMESPACES
            .insert(&seq, &tag.agent, 0)
            .map_err(|_| ReadError)
    });
    if recorded.is_err() {
        count_error(tag_error::KERNEL_READ);
    }
}

/// A mount namespace's sequence number (0 for the anonymous ones of detached trees).
#[inline(always)]
fn namespace_seq(ns: u64) -> Result<u64, ReadError> {
    read(ns, &MNT_NS_SEQ_OFFSET)
}

/// Whether the current task's mount namespace is one that `agent` made.
#[inline(always)]
fn in_own_namespace(agent: u32) -> Result<bool, ReadError> {
    let nsproxy: u64 = read(current_task(), &TASK_NSPROXY_OFFSET)?;
    let ns: u64 = read(nsproxy, &NSPROXY_MNT_NS_OFFSET)?;
    let seq = namespace_seq(ns)?;
    // SAFETY: the value is copied out.
    Ok(seq != 0 && unsafe { OWN_MOUNT_NAMESPACES.get(&seq) }.is_some_and(|owner| *owner == agent))
}

/// Whether the mount `vfsmount` (a `struct vfsmount`) is shared.
#[inline(always)]
fn shared(vfsmount: u64) -> Result<bool, ReadError> {
    let flags: u32 = read(vfsmount, &VFSMOUNT_FLAGS_OFFSET)?;
    Ok(flags & MNT_SHARED != 0)
}

/// Whether the mount a `struct path` lies on is shared: a mount on it propagates to its peers.
#[inline(always)]
pub fn path_shared(path: u64) -> Result<bool, ReadError> {
    shared(read(path, &PATH_MNT_OFFSET)?)
}

/// Whether the parent of the mount `vfsmount` is shared: unmounting it propagates to the
/// parent's peers.
#[inline(always)]
pub fn parent_shared(vfsmount: u64) -> Result<bool, ReadError> {
    // `struct mount` embeds the `vfsmount` the hooks receive.
    let mount = vfsmount.wrapping_sub(offset(&MOUNT_MNT_OFFSET) as u64);
    let parent: u64 = read(mount, &MOUNT_PARENT_OFFSET)?;
    if parent == 0 {
        return Err(ReadError);
    }
    shared(parent.wrapping_add(offset(&MOUNT_MNT_OFFSET) as u64))
}

/// Decides a mount operation `op` (`kya_common::mounts::op`) of agent `tag`: allowed only in a
/// mount namespace the agent made, and there only if `propagates` says it reaches no peer.
/// Refused with EPERM and an event (`DenyKind::Mount`, the operation in `detail`) otherwise,
/// and when a kernel structure cannot be read (fail closed).
#[inline(always)]
pub fn guard(tag: TaskTag, op: u32, propagates: impl FnOnce() -> Result<bool, ReadError>) -> i32 {
    let verdict = match in_own_namespace(tag.agent) {
        Ok(true) => propagates().map(|shared| !shared),
        other => other,
    };
    let matched = match verdict {
        Ok(true) => return ALLOW,
        Ok(false) => MatchedBy::SharedMount,
        Err(ReadError) => MatchedBy::ReadError,
    };
    report(DenyKind::Mount, tag, matched, |event| event.detail = op);
    DENY
}
