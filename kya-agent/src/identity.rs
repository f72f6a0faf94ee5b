//! A file's identity as the kernel programs compare it: the superblock's device number
//! (`inode->i_sb->s_dev`) and the inode number. Every table user space writes for the kernel
//! takes identities from here.
//!
//! `stat()`'s `st_dev` is not always the superblock's device: btrfs reports each subvolume's
//! anonymous device, and overlayfs whose layers are on different filesystems (without xino)
//! reports a per-layer pseudo device for files. The superblock's device is what the file's mount
//! shows in `mountinfo` (its `major:minor` field), and `statx()` names the mount
//! (`STATX_MNT_ID`), so identities are taken that way. Inode numbers need no translation:
//! `st_ino` is the inode's `i_ino` on ext4, XFS, btrfs and tmpfs, and overlayfs gives its own
//! inodes the number it reports.
use std::{
    collections::HashMap,
    ffi::CString,
    fs, io,
    mem::MaybeUninit,
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
};

use kya_common::tag::InodeKey;

use crate::paths::PROC;

/// Why the identity the kernel sees could not be established for a path.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The file cannot be looked up (missing, unreachable).
    #[error("{0}")]
    Stat(#[source] io::Error),
    #[error("the kernel did not say which mount holds it (statx without STATX_MNT_ID)")]
    NoMountId,
    #[error("cannot read {}: {source}", path.display())]
    Mounts {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "its mount (id {mount_id}) is not in {}, so the device the kernel sees is unknown",
        path.display()
    )]
    MountNotFound { mount_id: u64, path: PathBuf },
}

impl IdentityError {
    /// Whether the file itself is missing (rather than present with an unknown identity).
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Stat(error) if error.kind() == io::ErrorKind::NotFound)
    }
}

impl From<IdentityError> for io::Error {
    fn from(error: IdentityError) -> Self {
        match error {
            IdentityError::Stat(error) => error,
            other => Self::other(other),
        }
    }
}

/// A file's identity as the kernel sees it, and its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub key: InodeKey,
    /// The file's type and permission bits (`st_mode`).
    pub mode: u32,
}

impl Identity {
    #[must_use]
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }

    #[must_use]
    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
}

/// The superblock devices of one mount namespace's mounts, read from its `mountinfo` when a
/// mount is first asked about (and read again for a mount it does not list). Keep one for a
/// batch of look-ups, not longer: mount ids are reused after an unmount.
#[derive(Debug)]
pub struct Mounts {
    source: PathBuf,
    devices: HashMap<u64, u32>,
}

impl Mounts {
    /// The mounts this process sees (where the paths it resolves are).
    #[must_use]
    pub fn of_this_process() -> Self {
        Self::from_mountinfo(Path::new(PROC).join("self/mountinfo"))
    }

    /// The mounts process `pid` sees: where the files behind its `/proc/PID/` links are (its
    /// executable may be on a mount of another namespace, a container's overlay).
    #[must_use]
    pub fn of_process(pid: u32) -> Self {
        Self::from_mountinfo(Path::new(PROC).join(format!("{pid}/mountinfo")))
    }

    /// The mounts listed in a file in `mountinfo` format.
    #[must_use]
    pub fn from_mountinfo(source: PathBuf) -> Self {
        Self {
            source,
            devices: HashMap::new(),
        }
    }

    /// The identity of the file at `path`, following symlinks.
    pub fn identity_of(&mut self, path: &Path) -> Result<Identity, IdentityError> {
        self.identity(path, 0)
    }

    /// The identity of the directory entry at `path` itself (a symlink is not followed).
    pub fn entry_identity(&mut self, path: &Path) -> Result<Identity, IdentityError> {
        self.identity(path, libc::AT_SYMLINK_NOFOLLOW)
    }

    fn identity(&mut self, path: &Path, flags: libc::c_int) -> Result<Identity, IdentityError> {
        let (mount_id, ino, mode) = statx_mount(path, flags).map_err(IdentityError::Stat)?;
        let dev = self.device(mount_id.ok_or(IdentityError::NoMountId)?)?;
        Ok(Identity {
            key: InodeKey {
                ino,
                dev,
                padding: 0,
            },
            mode,
        })
    }

    /// The superblock device (in the kernel's encoding) of mount `mount_id`.
    fn device(&mut self, mount_id: u64) -> Result<u32, IdentityError> {
        if let Some(&dev) = self.devices.get(&mount_id) {
            return Ok(dev);
        }
        // Not read yet, or a mount made since the last read: read (again).
        let text = fs::read_to_string(&self.source).map_err(|source| IdentityError::Mounts {
            path: self.source.clone(),
            source,
        })?;
        self.devices = parse_mountinfo(&text);
        self.devices
            .get(&mount_id)
            .copied()
            .ok_or_else(|| IdentityError::MountNotFound {
                mount_id,
                path: self.source.clone(),
            })
    }
}

/// A file's identity as the kernel programs see it (following symlinks), for a single look-up.
pub fn identity_of(path: &Path) -> Result<InodeKey, IdentityError> {
    Mounts::of_this_process()
        .identity_of(path)
        .map(|identity| identity.key)
}

/// `statx()`: the id of the mount holding the file (when the kernel reports it), its inode
/// number and its mode.
fn statx_mount(path: &Path, flags: libc::c_int) -> io::Result<(Option<u64>, u64, u32)> {
    let path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    let mut buffer = MaybeUninit::<libc::statx>::zeroed();
    let mask = libc::STATX_TYPE | libc::STATX_MODE | libc::STATX_INO | libc::STATX_MNT_ID;
    // SAFETY: `path` is NUL-terminated and `buffer` is a writable `struct statx`.
    let result = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            path.as_ptr(),
            flags | libc::AT_STATX_SYNC_AS_STAT,
            mask,
            buffer.as_mut_ptr(),
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statx filled the buffer (it started zeroed, so fields it skipped are 0).
    let stx = unsafe { buffer.assume_init() };
    let mount_id = (stx.stx_mask & libc::STATX_MNT_ID != 0).then_some(stx.stx_mnt_id);
    Ok((mount_id, stx.stx_ino, u32::from(stx.stx_mode)))
}

/// Mount id → superblock device (kernel encoding) from `mountinfo` lines like
/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`, whose third field is
/// `MAJOR(sb->s_dev):MINOR(sb->s_dev)`.
fn parse_mountinfo(text: &str) -> HashMap<u64, u32> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let id = fields.next()?.parse().ok()?;
            let (major, minor) = fields.nth(1)?.split_once(':')?;
            Some((id, encode_dev(major.parse().ok()?, minor.parse().ok()?)))
        })
        .collect()
}

/// The kernel's internal `dev_t` (`major << 20 | minor`), which `super_block.s_dev` holds.
#[must_use]
pub fn encode_dev(major: u32, minor: u32) -> u32 {
    (major << 20) | (minor & 0xf_ffff)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    #[test]
    fn devices_come_from_the_mount_lines() {
        let text = "\
22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw
36 35 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
41 36 0:35 /@home /home rw - btrfs /dev/sdb1 rw,subvol=/@home
50 36 259:70000 / /data rw - xfs /dev/nvme0n1p9 rw
";
        let devices = parse_mountinfo(text);
        assert_eq!(devices[&36], (8 << 20) | 1);
        assert_eq!(devices[&41], 35);
        assert_eq!(devices[&50], (259 << 20) | 0x1_1170);
        assert_eq!(devices.len(), 4);
    }

    #[test]
    fn a_mount_missing_from_mountinfo_is_named_in_the_error() {
        let dir = std::env::temp_dir().join(format!("kya-identity-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mountinfo = dir.join("mountinfo");
        fs::write(&mountinfo, "4000000000 0 8:1 / / rw - ext4 /dev/sda1 rw\n").unwrap();
        let error = Mounts::from_mountinfo(mountinfo.clone())
            .identity_of(&dir)
            .expect_err("no mount of this host has that id and holds the temp dir");
        assert!(
            matches!(&error, IdentityError::MountNotFound { path, .. } if *path == mountinfo),
            "{error}"
        );
        assert!(error.to_string().contains("is not in"), "{error}");
        let missing = Mounts::from_mountinfo(dir.join("absent"))
            .identity_of(&dir)
            .expect_err("no mountinfo");
        assert!(matches!(missing, IdentityError::Mounts { .. }), "{missing}");
        let gone = identity_of(&dir.join("no-such-file")).expect_err("no file");
        assert!(gone.is_not_found());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn on_the_hosts_usual_filesystems_the_identity_is_stats() {
        // /proc is procfs and the temp dir tmpfs or ext4 here: filesystems whose st_dev is the
        // superblock's device, so both ways must agree.
        let dir = std::env::temp_dir();
        let metadata = fs::metadata(&dir).unwrap();
        let key = identity_of(&dir).unwrap();
        assert_eq!(key.ino, metadata.ino());
        assert_eq!(
            key.dev,
            encode_dev(libc::major(metadata.dev()), libc::minor(metadata.dev()))
        );
    }
}
