//! Real helpers that act for whoever connects to their unix sockets, for the deputy tests
//! (`tests/tests/vm/deputies.rs`): a tmux server, D-Bus buses, git's credential cache and
//! gpg-agent; and ssh-keygen, which makes keys and signs approvals in the verified approval
//! tests (`tests/tests/vm/verified_approvals.rs`). Each is copied from this machine (setup
//! installs their Debian packages) into the test VM with the libraries it loads, at the same
//! path, with the data it needs there.

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::initramfs::Initramfs;

/// Debian packages that provide [`EXECUTABLES`] and [`DATA`] (`libc-bin`, with the C.UTF-8
/// locale, is always installed).
pub const APT_PACKAGES: [&str; 8] = [
    "tmux",
    "dbus-daemon",
    "dbus-bin",
    "git",
    "gpg-agent",
    "gpgconf",
    "ncurses-base",
    "openssh-client",
];

/// The helpers and their clients. git is Debian's (`/usr/local/bin/git` may be another): its
/// credential cache client and daemon are builtins, so the one binary is all it needs.
const EXECUTABLES: [&str; 8] = [
    "/usr/bin/tmux",
    "/usr/bin/dbus-daemon",
    "/usr/bin/dbus-send",
    "/usr/bin/git",
    "/usr/bin/gpg-agent",
    "/usr/bin/gpg-connect-agent",
    "/usr/bin/gpgconf",
    // Makes and signs with ssh keys for the verified approval tests.
    "/usr/bin/ssh-keygen",
];

/// What they read besides libraries: terminal descriptions for tmux's clients (`TERM=xterm`)
/// and panes (`screen`, `tmux`), and a UTF-8 locale, without which tmux refuses to start.
const DATA: [&str; 4] = [
    "/lib/terminfo/x/xterm",
    "/lib/terminfo/s/screen",
    "/lib/terminfo/t/tmux",
    "/usr/lib/locale/C.utf8",
];

/// Adds the helpers, their libraries and their data to the VM at their host paths.
pub fn add(initramfs: &mut Initramfs) -> Result<()> {
    add_from_host(initramfs, &EXECUTABLES, &DATA)
}

/// Copies `executables` (with the libraries they load) and `data` from this machine into the
/// VM at the same paths; a missing one is an error that says to run setup.
pub fn add_from_host(initramfs: &mut Initramfs, executables: &[&str], data: &[&str]) -> Result<()> {
    for &path in executables {
        initramfs
            .add_executable(Path::new(path), path)
            .with_context(|| format!("{path} (install it with `cargo xtask setup`)"))?;
    }
    for &path in data {
        initramfs
            .add_path(Path::new(path), path)
            .with_context(|| format!("{path} (install it with `cargo xtask setup`)"))?;
    }
    Ok(())
}
