//! The kernel facilities no agent may use, whatever its uid and capabilities (see
//! `kya_common::facility`): loading kernel code, the kernel's helper programs, raw memory and
//! disks. Each refusal is counted and reported with the facility's kind.
//!
//! The file checks run on every open, read, write and mapping of an agent, before the file
//! rules. They look at what is cheap first (the inode's type, then its filesystem's magic) and
//! read names only on procfs, sysfs and binfmt_misc, and there mostly for writes. They decide
//! from what the kernel uses, never from the path the agent typed: a device node is judged by
//! the device it stands for (one the agent made with `mknod` too), a procfs or sysfs entry by
//! its name and the entries above it up to its filesystem's root (any mount of it, any bind
//! mount of a part of it).
//!
//! Other processes' command lines are refused here too ([`guard_cmdline`], see `cmdline`):
//! they are procfs files, refused and reported the way these are.
use aya_ebpf::helpers::{
    bpf_get_current_pid_tgid, generated::bpf_get_current_comm as bpf_get_current_comm_raw,
};
use kya_common::{
    event::{COMM_LEN, DenyEvent, DenyKind, MatchedBy, NO_RULE},
    facility::{
        BINFMTFS_MAGIC, CMDLINE, KCORE, PROC_SUPER_MAGIC, PROC_WALK_DEPTH, S_IFBLK, S_IFCHR,
        S_IFMT, SYSCTL_DIR, SYSFS_MAGIC, ShortName, UEVENT_HELPER, helper, load_id, loads_code,
        raw_char_device,
    },
    maps::event_loss,
    tag::TaskTag,
};

use crate::{
    cmdline,
    decision::{ALLOW, DENY},
    events::{self, report},
    kernel::{self, ReadError},
    maps::{DENIALS, EVENTS, EVENTS_LOST, count, count_for_agent},
};

/// Refuses the kernel loading what `id` names (`facility::load_id`: a module, a kexec image or
/// initramfs, a security policy; firmware is let through) for the agent `tag`. `file` is the
/// file it would be read from, 0 when the contents come from memory.
#[inline(always)]
pub fn guard_load(tag: TaskTag, id: u32, file: u64) -> i32 {
    if !loads_code(id) {
        return ALLOW;
    }
    report(
        DenyKind::KernelCode,
        tag,
        MatchedBy::KernelFacility,
        |event| {
            event.detail = id;
            if file != 0 {
                // The event names the file when it can; the refusal stands either way.
                let _ = fill_file(event, file);
            }
        },
    );
    DENY
}

/// Refuses the agent `tag` a module request (`request_module`) for the module named by the
/// kernel string at `name`.
#[inline(always)]
pub fn refuse_module_request(tag: TaskTag, name: u64) -> i32 {
    report(
        DenyKind::KernelCode,
        tag,
        MatchedBy::KernelFacility,
        |event| {
            event.detail = load_id::MODULE_REQUEST;
            // An unreadable name leaves the event's name empty; the refusal stands.
            let _ = kernel::kernel_str(name, &mut event.name);
        },
    );
    DENY
}

/// The verdict on `file` for the agent `tag` when it is one of the facilities: a raw memory,
/// I/O port, register or disk device or `/proc/kcore` (whatever the access), or, when
/// `writing`, a sysctl, `/sys/kernel/uevent_helper` or a file of binfmt_misc. `None` when it is
/// none of them: the file rules decide. A kernel structure that cannot be read refuses as
/// `kind` (the caller's own) with `MatchedBy::ReadError` (fail closed).
#[inline(always)]
pub fn guard_file(file: u64, tag: TaskTag, kind: DenyKind, writing: bool) -> Option<i32> {
    refuse_found(file, tag, kind, classify::<false>(file, writing, tag.agent))
}

/// Like [`guard_file`], and the command line of a process that is not one of the agent's is
/// refused too (see [`guard_cmdline`]): for reads and writes through a descriptor, which may
/// have been opened before the agent was tagged or by another process.
#[inline(always)]
pub fn guard_file_or_cmdline(
    file: u64,
    tag: TaskTag,
    kind: DenyKind,
    writing: bool,
) -> Option<i32> {
    refuse_found(file, tag, kind, classify::<true>(file, writing, tag.agent))
}

/// The verdict on `file` for the agent `tag` when it is the command line of a process that is
/// not one of the agent's (`/proc/PID/cmdline`, `/proc/PID/task/TID/cmdline`, on any procfs
/// mount; see `cmdline`): refused as `ProcessAccess`, with the process's pid, whatever the
/// access. `None` otherwise. A kernel structure that cannot be read refuses as `kind` (the
/// caller's own) with `MatchedBy::ReadError` (fail closed).
///
/// For `file_open`, which calls it first, before [`guard_file`] (whose [`classify`] it shares
/// with `mmap_file`, and a command line cannot be mapped). The budget to watch: on 6.1 this
/// check costs `file_open` about 17.6k of the verifier's 1M instructions (976k before, 994k
/// with it; inside [`classify`] it cost the same), `file_permission` 1.6k (810k).
#[inline(always)]
pub fn guard_cmdline(file: u64, tag: TaskTag, kind: DenyKind) -> Option<i32> {
    refuse_found(file, tag, kind, classify_cmdline(file, tag.agent))
}

#[inline(always)]
fn refuse_found(file: u64, tag: TaskTag, kind: DenyKind, found: u64) -> Option<i32> {
    if found == NOT_A_FACILITY {
        return None;
    }
    Some(refuse_file(file, tag.agent, kind, found))
}

/// Whether `file` is a command line `agent` may not read (see [`guard_cmdline`]), said as
/// [`classify`] says it. Called rather than inlined, like [`classify`].
#[inline(never)]
fn classify_cmdline(file: u64, agent: u32) -> u64 {
    let cmdline = kernel::typed::file_inode(file).and_then(|inode| {
        if kernel::typed::inode_fs_magic(inode)? != PROC_SUPER_MAGIC {
            return Ok(NOT_A_FACILITY);
        }
        proc_cmdline(inode, kernel::typed::file_dentry(file)?, agent)
    });
    cmdline.unwrap_or(found(READ_ERROR, 0))
}

/// For a procfs file (`inode`, `dentry`): whether it is a command line `agent` may not read.
#[inline(always)]
fn proc_cmdline(inode: u64, dentry: u64, agent: u32) -> Result<u64, ReadError> {
    // "cmdline" and its NUL fill the first word; the second is all NULs then.
    if kernel::dentry_short_name(dentry)?[0] != words(CMDLINE)[0] {
        return Ok(NOT_A_FACILITY);
    }
    let parent = kernel::dentry_parent(dentry)?;
    if kernel::dentry_parent(parent)? == parent {
        // `/proc/cmdline`, right below the root: the kernel's own command line.
        return Ok(NOT_A_FACILITY);
    }
    Ok(match cmdline::refused_for(inode, agent)? {
        Some(pid) => found(OTHER_PROCESS, pid),
        None => NOT_A_FACILITY,
    })
}

/// Counts and reports the refusal of `file`, which [`classify`] found to be a facility, and
/// returns [`DENY`]. Called rather than inlined, like [`classify`], and for the same reason; so
/// that its stack stays within a few words it writes the event field by field where the ring
/// buffer holds it (as `events` fills an event), never assembling it on the stack first.
#[inline(never)]
fn refuse_file(file: u64, agent: u32, kind: DenyKind, found: u64) -> i32 {
    let (kind, matched) = match found >> 32 {
        RAW_ACCESS => (DenyKind::RawAccess, MatchedBy::KernelFacility),
        KERNEL_HELPER => (DenyKind::KernelHelper, MatchedBy::KernelFacility),
        KERNEL_HELPER_TOO_DEEP => (DenyKind::KernelHelper, MatchedBy::TooDeep),
        OTHER_PROCESS => (DenyKind::ProcessAccess, MatchedBy::OtherProcess),
        _ => (kind, MatchedBy::ReadError),
    };
    count_for_agent(&DENIALS, agent, kind as u32);
    if !events::take_budget(agent) {
        count(&EVENTS_LOST, event_loss::AGENT_BUDGET);
        return DENY;
    }
    let Some(mut entry) = EVENTS.reserve::<DenyEvent>(0) else {
        count(&EVENTS_LOST, event_loss::RING_BUFFER);
        return DENY;
    };
    let event = entry.as_mut_ptr();
    let pid_tgid = bpf_get_current_pid_tgid();
    // SAFETY: `event` is the reserved record, valid for writes of a whole `DenyEvent`; every
    // field is written before it is submitted.
    unsafe {
        // Zeros word by word (a `memset` would be a call, whose stack adds to this one's).
        zero(event.cast(), size_of::<DenyEvent>());
        (*event).kind = kind as u32;
        (*event).agent = agent;
        #[expect(clippy::cast_possible_truncation, reason = "the helper packs two u32s")]
        {
            (*event).tgid = (pid_tgid >> 32) as u32;
            (*event).pid = pid_tgid as u32;
            (*event).detail = found as u32;
        }
        (*event).matched = matched as u32;
        (*event).rule = NO_RULE;
        // An unreadable command name stays empty.
        let _ = bpf_get_current_comm_raw((*event).comm.as_mut_ptr().cast(), COMM_LEN as u32);
        // The event names the file when it can; the refusal stands either way.
        let _ = fill_file(&mut *event, file);
    }
    entry.submit(0);
    DENY
}

/// Writes `len` zero bytes (a multiple of 4) at `at`.
///
/// # Safety
/// `at` must be valid for writes of `len` bytes and 4-byte aligned.
#[inline(always)]
unsafe fn zero(at: *mut u8, len: usize) {
    let mut offset = 0;
    while offset < len {
        // SAFETY: within the `len` bytes the caller vouches for; volatile so that the
        // compiler does not fold the stores back into a `memset` call.
        unsafe { core::ptr::write_volatile(at.add(offset).cast::<u32>(), 0) };
        offset += 4;
    }
}

/// What [`classify`] found: the facility in the high half (one of the constants below), the
/// event's `detail` in the low half.
const NOT_A_FACILITY: u64 = 0;
const RAW_ACCESS: u64 = 1;
const KERNEL_HELPER: u64 = 2;
const KERNEL_HELPER_TOO_DEEP: u64 = 3;
const READ_ERROR: u64 = 4;
/// Another process's command line; the detail is its pid.
const OTHER_PROCESS: u64 = 5;

#[inline(always)]
const fn found(facility: u64, detail: u32) -> u64 {
    facility << 32 | detail as u64
}

/// Which facility `file` is, if any (see [`guard_file`]); with `CMDLINES`, or a command line
/// `agent` may not read (see [`guard_file_or_cmdline`]). A function of its own, called rather
/// than inlined: inlined, it grew `file_permission` past what the compiler keeps in one
/// function, and the stack of the split-off parts came to more than the 512 bytes a BPF
/// program has. `file_permission` uses 480 of them itself, and the verifier counts a called
/// function's stack (rounded up to 32 bytes) on top of its caller's, so this one keeps to a
/// few words: no event, no name longer than a [`ShortName`], no call of its own.
#[inline(never)]
fn classify<const CMDLINES: bool>(file: u64, writing: bool, agent: u32) -> u64 {
    match facility::<CMDLINES>(file, writing, agent) {
        Ok(found) => found,
        Err(ReadError) => found(READ_ERROR, 0),
    }
}

#[inline(always)]
fn facility<const CMDLINES: bool>(file: u64, writing: bool, agent: u32) -> Result<u64, ReadError> {
    let inode = kernel::typed::file_inode(file)?;
    let kind = kernel::typed::inode_mode(inode)? & S_IFMT;
    if kind == S_IFBLK {
        return Ok(found(RAW_ACCESS, kernel::inode_rdev(inode)?));
    }
    if kind == S_IFCHR {
        let rdev = kernel::inode_rdev(inode)?;
        return Ok(if raw_char_device(rdev) {
            found(RAW_ACCESS, rdev)
        } else {
            NOT_A_FACILITY
        });
    }
    match kernel::typed::inode_fs_magic(inode)? {
        PROC_SUPER_MAGIC => {
            let dentry = kernel::typed::file_dentry(file)?;
            if CMDLINES {
                let found = proc_cmdline(inode, dentry, agent)?;
                if found != NOT_A_FACILITY {
                    return Ok(found);
                }
            }
            proc_entry(dentry, writing)
        }
        SYSFS_MAGIC if writing => {
            let name = kernel::dentry_short_name(kernel::typed::file_dentry(file)?)?;
            Ok(if name == words(UEVENT_HELPER) {
                found(KERNEL_HELPER, helper::UEVENT_HELPER)
            } else {
                NOT_A_FACILITY
            })
        }
        BINFMTFS_MAGIC if writing => Ok(found(KERNEL_HELPER, helper::BINFMT_MISC)),
        _ => Ok(NOT_A_FACILITY),
    }
}

/// A procfs entry: `/proc/kcore` whatever the access, a sysctl (below `/proc/sys`) when
/// `writing`.
#[inline(always)]
fn proc_entry(dentry: u64, writing: bool) -> Result<u64, ReadError> {
    let parent = kernel::dentry_parent(dentry)?;
    if parent == dentry {
        // procfs's root itself.
        return Ok(NOT_A_FACILITY);
    }
    let above = kernel::dentry_parent(parent)?;
    if above == parent {
        // Right below the root: `/proc/kcore`, or an entry that is no facility (`/proc/sys`
        // itself is a directory, never written).
        let name = kernel::dentry_short_name(dentry)?;
        return Ok(if name == words(KCORE) {
            found(RAW_ACCESS, 0)
        } else {
            NOT_A_FACILITY
        });
    }
    if !writing {
        return Ok(NOT_A_FACILITY);
    }
    // Up to the directory right below the root, which names what the entry belongs to.
    let mut child = parent;
    let mut current = above;
    for _ in 0..PROC_WALK_DEPTH {
        let next = kernel::dentry_parent(current)?;
        if next == current {
            let name = kernel::dentry_short_name(child)?;
            return Ok(if name == words(SYSCTL_DIR) {
                found(KERNEL_HELPER, helper::SYSCTL)
            } else {
                NOT_A_FACILITY
            });
        }
        child = current;
        current = next;
    }
    // Deeper than any sysctl lies, yet it might be one: refused (fail closed).
    Ok(found(KERNEL_HELPER_TOO_DEEP, helper::SYSCTL))
}

/// A short name as the two words [`kernel::dentry_short_name`] reads.
#[inline(always)]
const fn words(name: ShortName) -> [u64; 2] {
    let [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p] = name;
    [
        u64::from_ne_bytes([a, b, c, d, e, f, g, h]),
        u64::from_ne_bytes([i, j, k, l, m, n, o, p]),
    ]
}

/// Puts the identity and name of `file` into the event.
#[inline(always)]
pub fn fill_file(event: &mut DenyEvent, file: u64) -> Result<(), ReadError> {
    let (ino, dev) = kernel::inode_identity(kernel::file_inode(file)?)?;
    event.ino = ino;
    event.dev = dev;
    kernel::dentry_name(kernel::file_dentry(file)?, &mut event.name)
}
