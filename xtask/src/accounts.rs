//! Debian's shadow tools in the test VM (`useradd`, `userdel`, `usermod`, `chage`, `passwd`),
//! for the ghost agent tests (`tests/tests/vm/ghost_agents.rs`): they remove, lock and expire
//! accounts exactly as on a real host, so the daemon is tested against the files those tools
//! write (replaced by rename, with their lock files). `/etc/shadow` itself is written by
//! `Initramfs::new` with the other user database files.

use anyhow::Result;

use crate::initramfs::Initramfs;

/// The Debian package that provides [`EXECUTABLES`] (and `/etc/login.defs`, from
/// `login.defs`, which every Debian system has).
pub const APT_PACKAGES: [&str; 1] = ["passwd"];

/// The tools, at their Debian paths. None of them but `passwd` loads PAM, and `passwd -l` as
/// root does not use it.
const EXECUTABLES: [&str; 5] = [
    "/usr/sbin/useradd",
    "/usr/sbin/userdel",
    "/usr/sbin/usermod",
    "/usr/bin/chage",
    "/usr/bin/passwd",
];

/// What they read: the password aging and id ranges defaults.
const DATA: [&str; 1] = ["/etc/login.defs"];

/// Adds the tools, their libraries and their data to the VM at their host paths.
pub fn add(initramfs: &mut Initramfs) -> Result<()> {
    crate::helpers::add_from_host(initramfs, &EXECUTABLES, &DATA)
}
