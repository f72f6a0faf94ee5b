//! Remembered allowed verdicts of the file hooks (see `kya_common::verdict`): a read or a
//! mapping of a file that nothing protects costs a lookup instead of the protection walk.
//!
//! What the verdict of `protect::check` depends on, and what stamps it:
//! - the rule maps: the daemon bumps `RULES_GENERATION` after every change to them; the hook
//!   reads it before checking, so a change during the check leaves a stale stamp;
//! - the dentry's identity, name and the dentries above it, up to its filesystem's root: they
//!   change only when a dentry moves (`d_move`, `d_exchange`, `d_splice_alias`), which bumps
//!   `rename_lock`'s sequence count, read before the check too (odd: a move is under way, so
//!   nothing is remembered). A dentry that turns negative and positive again, or is freed and
//!   made again at the same address (for another file, or for another name of the same file,
//!   which a name rule may protect), is told apart by its parent, inode, inode number and
//!   hashed name, which every use compares;
//! - mounts do not enter into it: the walk goes up dentries within one filesystem, never
//!   across a mount, so a mount or a bind mount over a directory changes no verdict on a
//!   dentry (the next open through the new mount reaches another dentry, and is checked);
//! - grants: only verdicts that needed none are remembered (grants expire and `--once`
//!   grants are spent);
//! - the agent: part of the key.
//!
//! Any read error means no stamp: the full check runs (and fails closed on its own).
use kya_common::verdict::{ClearVerdict, VerdictKey};

use crate::{
    kernel::{self, ReadError},
    maps::{CLEAR_VERDICTS, RULES_GENERATION, VERDICT_SCRATCH},
};

/// The kernel address of `rename_lock`, set by the daemon from `/proc/kallsyms`; 0: unknown,
/// nothing is remembered.
#[unsafe(no_mangle)]
static RENAME_LOCK_ADDR: u64 = 0;

/// What a check is stamped with, packed in one word so it stays in a register (the file hooks
/// are at the 6.1 stack limit, and a called function's stack adds to theirs): the rules'
/// generation in the high half, `rename_lock`'s sequence count (always even in a stamp) in the
/// low half. The two odd values below are not stamps.
pub type Stamp = u64;

/// Nothing may be remembered now (no `rename_lock`, a read error, or a move under way).
pub const NO_STAMP: Stamp = 1;
/// A verdict remembered under the current stamp holds: allowed.
pub const CLEAR: Stamp = 3;

/// Whether a verdict remembered for `agent` on `dentry` holds now ([`CLEAR`]); if not, the
/// stamp a check that starts now gets ([`NO_STAMP`] when nothing may be remembered). With
/// `names`, only a verdict that applied the private key directories' rules by name will do.
/// Called rather than inlined: its few words of stack add to its caller's only during the call.
#[inline(never)]
pub fn lookup(dentry: u64, agent: u32, names: bool) -> Stamp {
    let Some(scratch) = VERDICT_SCRATCH.get_ptr_mut(0) else {
        return stamp();
    };
    // SAFETY: this CPU's scratch entry, used by this program alone until it returns.
    let key = unsafe { &mut (*scratch).key };
    key.dentry = dentry;
    key.agent = agent;
    key.padding = 0;
    // SAFETY: fields are read through the map's pointer, valid while the program runs.
    let verdict = unsafe { CLEAR_VERDICTS.get(key) };
    // The stamp after the lookup (still before the check a miss leads to): with `agent` no
    // longer needed, what stays live across the helper calls fits the callee-saved registers,
    // and this function needs no stack beyond its keys (`file_permission` on 6.1 has 32 bytes
    // left for it).
    let stamp = stamp();
    if stamp == NO_STAMP {
        return NO_STAMP;
    }
    let Some(verdict) = verdict else {
        return stamp;
    };
    if verdict.generation != stamp >> 32
        || u64::from(verdict.rename_seq) != stamp & 0xffff_ffff
        || (names && verdict.names == 0)
    {
        return stamp;
    }
    if matches!(same_shape(dentry, verdict), Ok(true)) {
        CLEAR
    } else {
        stamp
    }
}

#[inline(always)]
fn stamp() -> Stamp {
    // SAFETY: a plain read of a global; volatile so the compiler keeps the load the loader patches.
    let lock = unsafe { core::ptr::read_volatile(&RENAME_LOCK_ADDR) };
    // The generation first: the daemon bumps it after its change, so reading it before the
    // sequence count and the rules can only make the stamp older than the rules it checks.
    let Some(generation) = RULES_GENERATION.get(0).copied() else {
        return NO_STAMP;
    };
    let Ok(rename_seq) = kernel::read_plain::<u32>(lock, 0) else {
        return NO_STAMP;
    };
    if rename_seq & 1 != 0 {
        return NO_STAMP;
    }
    u64::from(generation) << 32 | u64::from(rename_seq)
}

/// Whether the dentry still has the parent, inode, inode number and hashed name the verdict
/// recorded. Read and compared one field at a time: a struct of them would not fit the file
/// hooks' stack on 6.1.
#[inline(always)]
fn same_shape(dentry: u64, verdict: &ClearVerdict) -> Result<bool, ReadError> {
    if kernel::typed::dentry_parent(dentry)? != verdict.parent {
        return Ok(false);
    }
    let inode = kernel::typed::dentry_inode(dentry)?;
    Ok(inode == verdict.inode
        && kernel::typed::inode_ino(inode)? == verdict.ino
        && kernel::typed::dentry_name_hash_len(dentry)? == verdict.name_hash_len)
}

/// Records in `verdict` what `same_shape` compares, read straight into the map's memory.
#[inline(always)]
fn record_shape(dentry: u64, verdict: &mut ClearVerdict) -> Result<(), ReadError> {
    verdict.parent = kernel::typed::dentry_parent(dentry)?;
    // From the loaded value, not back from the map: a load from map memory is a plain number
    // to the verifier, and `typed` loads need the typed pointer.
    let inode = kernel::typed::dentry_inode(dentry)?;
    verdict.inode = inode;
    verdict.ino = kernel::typed::inode_ino(inode)?;
    verdict.name_hash_len = kernel::typed::dentry_name_hash_len(dentry)?;
    Ok(())
}

/// Remembers that nothing protects `dentry` from `agent`, as checked under `stamp` (`names`:
/// with the private key directories' rules by name). Best effort: a verdict that cannot be
/// recorded is checked in full next time. Called rather than inlined, like [`lookup`].
#[inline(never)]
pub fn remember(dentry: u64, agent: u32, names: bool, stamp: Stamp) {
    if stamp & 1 != 0 {
        return;
    }
    let Some(scratch) = VERDICT_SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's scratch entry, used by this program alone until it returns.
    let scratch = unsafe { &mut *scratch };
    scratch.key = VerdictKey {
        dentry,
        agent,
        padding: 0,
    };
    if record_shape(dentry, &mut scratch.verdict).is_err() {
        return;
    }
    #[expect(clippy::cast_possible_truncation, reason = "the stamp packs two u32s")]
    {
        scratch.verdict.generation = stamp >> 32;
        scratch.verdict.rename_seq = stamp as u32;
    }
    scratch.verdict.names = u32::from(names);
    let _ = CLEAR_VERDICTS.insert(&scratch.key, &scratch.verdict, 0);
}
