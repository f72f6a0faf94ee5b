//! Cgroups an agent may change: those in the subtree it runs in, and nothing outside it.
//!
//! Every change to a cgroup is a write on the cgroup filesystem: a control file written
//! (`cgroup.kill`, `cgroup.freeze`, `memory.max`, `pids.max`, ...), a cgroup directory made or
//! removed, and every migration. Moving a process, whether by writing its pid to a
//! `cgroup.procs` or `cgroup.threads` or by `clone3(CLONE_INTO_CGROUP)`, makes the kernel check
//! write permission on the `cgroup.procs` of the nearest cgroup that holds both the source and
//! the destination (`cgroup_procs_write_permission`), which reaches the `inode_permission`
//! hook. So one rule covers it all: an agent may write on the cgroup filesystem only inside
//! the cgroup it is in now, or below it. A move out of that subtree, or of an outside process
//! into it, has its common ancestor outside and is refused.
//!
//! In its own cgroup (the top of the subtree), only the files that delegation hands to the
//! cgroup's user are writable: `cgroup.procs`, `cgroup.threads` and `cgroup.subtree_control`.
//! The others (`memory.max`, `pids.max`, `cgroup.freeze`, `cgroup.kill`, ...) are the limits and
//! controls of whoever placed the agent there, as cgroup v2's delegation model has it.
//!
//! Cgroup v1 hierarchies have no such model (and a `release_agent` that the kernel runs as
//! root): agents may not write to them at all.
use kya_common::{
    event::{DenyKind, MatchedBy, NO_RULE},
    tag::TaskTag,
};

use crate::{
    decision::{ALLOW, DENY},
    events::report,
    kernel::{self, ReadError},
    tagging::current_task,
};

/// `CGROUP2_SUPER_MAGIC` and `CGROUP_SUPER_MAGIC` (v1) from `include/uapi/linux/magic.h`.
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
const CGROUP_SUPER_MAGIC: u64 = 0x0027_e0eb;

/// Control files of its own cgroup that an agent may write: the ones cgroup v2 delegates.
const DELEGATED: [&[u8]; 3] = [
    b"cgroup.procs\0",
    b"cgroup.threads\0",
    b"cgroup.subtree_control\0",
];

/// Refuses the agent `tag` a write on `inode` (a control file or a cgroup directory) when it
/// is on the cgroup2 filesystem outside the agent's cgroup subtree, or on a cgroup v1
/// hierarchy. Any other inode is allowed here (other checks judge it).
///
/// Denies with EPERM and an event (`cgroup`, the cgroup's id and the file's name); a kernel
/// read error denies too (fail closed).
#[inline(always)]
pub fn guard_write(inode: u64, tag: TaskTag) -> i32 {
    let mut name = [0u8; FILE_NAME_LEN];
    let verdict = judge(inode, &mut name);
    let matched = match verdict {
        ALLOWED => return ALLOW,
        READ_ERROR => MatchedBy::ReadError,
        _ => MatchedBy::OtherCgroup,
    };
    report(DenyKind::Cgroup, tag, matched, |event| {
        event.rule = NO_RULE;
        if verdict != READ_ERROR && verdict != V1 {
            event.ino = verdict;
        }
        event.name[..FILE_NAME_LEN].copy_from_slice(&name);
    });
    DENY
}

/// What [`judge`] decided: [`ALLOWED`], [`READ_ERROR`], [`V1`], or the id of a cgroup the
/// write is refused on (cgroup ids start above the root's 1).
type Verdict = u64;
const ALLOWED: Verdict = 0;
const READ_ERROR: Verdict = u64::MAX;
const V1: Verdict = u64::MAX - 1;

/// Bytes of a control file's name read for the check and the event (the longest delegated
/// name, `cgroup.subtree_control`, with its NUL, fits).
const FILE_NAME_LEN: usize = 24;

/// Whether the current task may write on `inode`, reading the control file's name into
/// `name` (left empty for a directory).
#[inline(always)]
fn judge(inode: u64, name: &mut [u8; FILE_NAME_LEN]) -> Verdict {
    match outside(inode, name) {
        Ok(None) => ALLOWED,
        Ok(Some(verdict)) => verdict,
        Err(ReadError) => READ_ERROR,
    }
}

#[inline(always)]
fn outside(inode: u64, name: &mut [u8; FILE_NAME_LEN]) -> Result<Option<Verdict>, ReadError> {
    let magic = kernel::inode_fs_magic(inode)?;
    if magic == CGROUP_SUPER_MAGIC {
        return Ok(Some(V1));
    }
    if magic != CGROUP2_SUPER_MAGIC {
        return Ok(None);
    }
    let cgroup = kernel::cgroupfs_inode_cgroup(inode, name)?;
    let own = kernel::task_cgroup(current_task())?;
    let inside = if cgroup == own {
        // Its own directory (a child made or removed), or a delegated file.
        name[0] == 0 || DELEGATED.iter().any(|file| starts_with(name, file))
    } else {
        let level = kernel::cgroup_level(own)?;
        kernel::cgroup_level(cgroup)? > level && kernel::cgroup_ancestor(cgroup, level)? == own
    };
    if inside {
        Ok(None)
    } else {
        Ok(Some(kernel::cgroup_id(cgroup)?))
    }
}

/// Whether `name` begins with `prefix` (which ends in its NUL, so the whole name must match).
#[inline(always)]
fn starts_with(name: &[u8; FILE_NAME_LEN], prefix: &[u8]) -> bool {
    prefix.len() <= name.len() && name[..prefix.len()] == *prefix
}
