//! A file's identity as the kernel programs compare it: the superblock's device number and the
//! inode number. User space reads both with `stat()` and converts the device to the kernel's
//! encoding, so every table it writes matches what the programs read from the inode.
use std::{fs, io, os::unix::fs::MetadataExt as _, path::Path};

use kya_common::tag::InodeKey;

/// A file's identity as the kernel programs see it (following symlinks).
pub fn identity_of(path: &Path) -> io::Result<InodeKey> {
    let metadata = fs::metadata(path)?;
    Ok(InodeKey {
        ino: metadata.ino(),
        dev: kernel_dev(metadata.dev()),
        padding: 0,
    })
}

/// Converts a user-space `st_dev` into the kernel's internal `dev_t` (`major << 20 | minor`),
/// which is what `super_block.s_dev` holds.
#[must_use]
pub fn kernel_dev(st_dev: u64) -> u32 {
    let major = libc::major(st_dev);
    let minor = libc::minor(st_dev);
    (major << 20) | (minor & 0xf_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_dev_matches_the_kernel_encoding() {
        // 8:1 (sda1) in glibc's encoding is 0x801; the kernel keeps it as 8 << 20 | 1.
        assert_eq!(kernel_dev(libc::makedev(8, 1)), (8 << 20) | 1);
        assert_eq!(
            kernel_dev(libc::makedev(259, 70_000)),
            (259 << 20) | 0x1_1170
        );
    }
}
