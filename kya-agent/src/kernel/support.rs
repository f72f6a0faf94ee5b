//! Whether this host can run kya's kernel programs, explained in one line when it cannot.
use std::fs;

use super::{Kernel, KernelError};
use crate::paths::SECURITYFS_LSM;

/// Why this host cannot enforce: one line that says what was checked and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

/// Checks the preconditions that can be read without loading anything.
pub fn check_preconditions() -> Result<(), Unsupported> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Unsupported(
            "kya-agent must run as root (it loads BPF LSM programs): run it with sudo or as a \
             systemd service"
                .to_owned(),
        ));
    }
    let active = fs::read_to_string(SECURITYFS_LSM).map_err(|error| {
        Unsupported(format!(
            "cannot read the active LSM list at {SECURITYFS_LSM} ({error}): mount securityfs \
             (`mount -t securityfs securityfs /sys/kernel/security`) and retry"
        ))
    })?;
    let active = active.trim();
    if !active.split(',').any(|lsm| lsm == "bpf") {
        return Err(Unsupported(format!(
            "BPF LSM is not active on this kernel ({SECURITYFS_LSM} lists `{active}`): add bpf to \
             the lsm= kernel command line (lsm={active},bpf) and reboot, or use `cargo xtask run` \
             to try kya in a VM"
        )));
    }
    Ok(())
}

/// Turns a load failure into the one-line explanation users see.
#[must_use]
pub fn explain(error: &KernelError) -> Unsupported {
    if error.is_permission_denied() {
        Unsupported(
            "this kernel lists bpf as an active LSM but refused to load kya's BPF LSM programs \
             (EPERM): run kya on a kernel that permits BPF LSM programs, or use `cargo xtask \
             run` to try it in a VM"
                .to_owned(),
        )
    } else {
        Unsupported(format!(
            "loading kya's kernel programs failed: {}",
            crate::error_chain(error)
        ))
    }
}

/// Loads and attaches everything, then detaches it again: proof that enforcement can start.
pub fn probe() -> Result<(), Unsupported> {
    check_preconditions()?;
    Kernel::load(&super::Lifetime::Process)
        .map(drop)
        .map_err(|error| explain(&error))
}
