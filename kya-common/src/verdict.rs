//! Remembered "nothing protects this" verdicts of the file hooks, as both sides name them.
//!
//! Whether a file is protected from an agent is a function of the dentry it is reached through
//! (its identity, its name and the dentries above it) and of the rule maps. The file hooks
//! remember an allowed verdict (no rule protects the object, no grant was needed) under the
//! dentry and the agent, stamped with what could change it: the rules' generation
//! ([`RULES_GENERATION`], which the daemon bumps after every change to a rule map) and the
//! sequence count of the kernel's `rename_lock` (which every move of a dentry bumps). A read
//! or a mapping then costs a lookup; a stamp that differs is a miss and a full check.

/// Allowed verdicts by (dentry, agent): [`VerdictKey`] → [`ClearVerdict`].
pub const CLEAR_VERDICTS: &str = "CLEAR_VERDICTS";
/// One entry: the generation of the rule maps, bumped by the daemon after every change to
/// `PROTECTED_INODES` or `PROTECTED_NAMES`.
pub const RULES_GENERATION: &str = "RULES_GENERATION";
/// Per-CPU room for one key and value of [`CLEAR_VERDICTS`] (the file hooks have no stack to
/// spare on 6.1): one entry of a [`VerdictKey`] and a [`ClearVerdict`].
pub const VERDICT_SCRATCH: &str = "VERDICT_SCRATCH";
/// The global holding the kernel address of `rename_lock` (a `seqlock_t`, whose sequence count
/// is its first word); 0 when the daemon could not find it, and then nothing is remembered.
pub const RENAME_LOCK_GLOBAL: &str = "RENAME_LOCK_ADDR";
/// The symbol the daemon looks up in `/proc/kallsyms`.
pub const RENAME_LOCK_SYMBOL: &str = "rename_lock";

/// Verdicts remembered at once; the least recently used is forgotten first (a miss: the next
/// check is a full one).
pub const MAX_CLEAR_VERDICTS: u32 = 16_384;

/// Key of [`CLEAR_VERDICTS`]: the kernel address of the dentry, and the agent.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VerdictKey {
    pub dentry: u64,
    pub agent: u32,
    pub padding: u32,
}

/// Value of [`CLEAR_VERDICTS`]: what the dentry was when no rule protected it, and the stamp
/// the verdict holds for. The dentry's parent, inode, inode number and name (as the dcache
/// hashed it) are compared on every use, so a dentry freed and made again at the same address
/// for another object, or for another name of the same file (a name rule may protect that
/// one), is a miss.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClearVerdict {
    pub parent: u64,
    pub inode: u64,
    pub ino: u64,
    /// The dentry's `d_name.hash_len`: the name's hash (salted by its parent) and length.
    pub name_hash_len: u64,
    pub generation: u64,
    /// `rename_lock`'s sequence count, read before the check (always even).
    pub rename_seq: u32,
    /// 1 when the check applied the private key directories' rules by name (`file_open`,
    /// `mmap_file`); such a verdict also holds for `file_permission`, which does not.
    pub names: u32,
}

/// The one entry of [`VERDICT_SCRATCH`]: a key and a value of [`CLEAR_VERDICTS`], built where
/// the map can read them rather than on the file hooks' stack.
#[repr(C)]
pub struct VerdictScratch {
    pub key: VerdictKey,
    pub verdict: ClearVerdict,
}

const _: () = assert!(core::mem::size_of::<VerdictKey>() == 16);
const _: () = assert!(core::mem::size_of::<ClearVerdict>() == 48);

#[cfg(feature = "user")]
mod user {
    // SAFETY: integers only, no padding (sizes asserted above).
    unsafe impl aya::Pod for super::VerdictKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ClearVerdict {}
}
