//! Loads of kernel struct fields straight from memory, for the file hooks' hot path.
//!
//! A pointer the kernel hands an LSM program (a hook's argument) carries its BTF type, and so
//! does a pointer field loaded from it. The verifier lets a program load a field through such a
//! pointer with one instruction (which the JIT makes a load that cannot fault), where a read
//! through `bpf_probe_read_kernel` costs a helper call and its checks: on a tagged `open` the
//! difference is most of kya's own work. The offsets are the daemon's read-only globals (see
//! the parent module), constants to the verifier, which checks each load against the running
//! kernel's BTF: an offset that is not a field of that type fails the program's load, it never
//! reads garbage.
//!
//! Only for pointers that came that way: a hook's argument, or a pointer field loaded here. An
//! address read with `bpf_probe_read_kernel` or kept in a map is a plain number to the
//! verifier, which refuses a load through it: the parent module's reads serve there. A null
//! pointer is a [`ReadError`] here as there; a load the kernel's fixup catches reads 0, which
//! is no valid inode, dentry, mode or filesystem magic, so every caller's checks treat it as
//! they treat an unreadable field.
//!
//! A typed pointer also stays one in the code that carries it: the verifier refuses any
//! arithmetic on it but adding, so it must not end up packed into an enum (the compiler shifts
//! and masks such values). That is why the socket hooks, whose `struct sock` travels in
//! `net::SocketClass`, keep the probe reads.
use super::{
    DENTRY_INODE_OFFSET, DENTRY_NAME_HASH_LEN_OFFSET, DENTRY_PARENT_OFFSET, FILE_DENTRY_OFFSET,
    FILE_INODE_OFFSET, FILE_MODE_OFFSET, INODE_INO_OFFSET, INODE_MODE_OFFSET, INODE_SB_OFFSET,
    ReadError, SB_MAGIC_OFFSET, offset,
};

/// `FMODE_WRITE` in `file->f_mode`: the file is open for writing.
const FMODE_WRITE: u32 = 0x2;

/// Loads the `T` at `offset(global)` bytes into the kernel object at `base`, a BTF-typed
/// pointer (see the module's documentation).
#[inline(always)]
fn load<T>(base: u64, global: &'static u32) -> Result<T, ReadError> {
    load_at(base, global, 0)
}

/// Like [`load`], `extra` bytes further (a member of the member at `offset(global)`).
#[inline(always)]
fn load_at<T>(base: u64, global: &'static u32, extra: usize) -> Result<T, ReadError> {
    if base == 0 {
        return Err(ReadError);
    }
    let field = (base as usize)
        .wrapping_add(offset(global))
        .wrapping_add(extra) as *const T;
    // SAFETY: `base` is a pointer the verifier knows the type of, and it checks this load
    // against that type's BTF; the JIT turns a faulting load into a read of 0.
    Ok(unsafe { core::ptr::read_volatile(field) })
}

/// The inode behind `file`.
#[inline(always)]
pub fn file_inode(file: u64) -> Result<u64, ReadError> {
    load(file, &FILE_INODE_OFFSET)
}

/// The dentry `file` was opened through.
#[inline(always)]
pub fn file_dentry(file: u64) -> Result<u64, ReadError> {
    load(file, &FILE_DENTRY_OFFSET)
}

/// Whether `file` is open for writing.
#[inline(always)]
pub fn file_open_for_writing(file: u64) -> Result<bool, ReadError> {
    let mode: u32 = load(file, &FILE_MODE_OFFSET)?;
    Ok(mode & FMODE_WRITE != 0)
}

/// An inode's mode: its type (`S_IFMT` bits) and permissions.
#[inline(always)]
pub fn inode_mode(inode: u64) -> Result<u16, ReadError> {
    load(inode, &INODE_MODE_OFFSET)
}

/// The magic number of the filesystem an inode is on (`s_magic`: procfs, sysfs, ...).
#[inline(always)]
pub fn inode_fs_magic(inode: u64) -> Result<u64, ReadError> {
    let sb: u64 = load(inode, &INODE_SB_OFFSET)?;
    load(sb, &SB_MAGIC_OFFSET)
}

/// An inode's number.
#[inline(always)]
pub fn inode_ino(inode: u64) -> Result<u64, ReadError> {
    load(inode, &INODE_INO_OFFSET)
}

/// A dentry's parent (itself at the root of its filesystem).
#[inline(always)]
pub fn dentry_parent(dentry: u64) -> Result<u64, ReadError> {
    load(dentry, &DENTRY_PARENT_OFFSET)
}

/// A dentry's inode (0 for a negative dentry).
#[inline(always)]
pub fn dentry_inode(dentry: u64) -> Result<u64, ReadError> {
    load(dentry, &DENTRY_INODE_OFFSET)
}

/// A dentry's name as the dcache hashed it: the name's hash (salted by the parent) and length
/// in one word. Two names in one directory differ here unless their hashes collide.
#[inline(always)]
pub fn dentry_name_hash_len(dentry: u64) -> Result<u64, ReadError> {
    // `hash_len` shares a union with the struct of `hash` and `len`, and the verifier walks a
    // union by its first member: the two halves are loaded one by one, and put together as
    // the word is laid out in memory (`hash` first on this little-endian machine).
    let hash: u32 = load_at(dentry, &DENTRY_NAME_HASH_LEN_OFFSET, 0)?;
    let len: u32 = load_at(dentry, &DENTRY_NAME_HASH_LEN_OFFSET, 4)?;
    Ok(u64::from(len) << 32 | u64::from(hash))
}
