//! Harness for kya's integration tests: start the real daemon with a config, run real probe
//! processes, and read what the kernel tagged through the real `kya` CLI.
//!
//! These tests load BPF LSM programs, so they run inside the test VM (`cargo xtask test`).
//! Outside it they fail with a message saying so: a kernel test never silently passes.
mod checks;
mod daemon;
mod fixture;
mod probe;
mod terminal;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    thread,
    time::{Duration, Instant},
};

use self::daemon::scratch_root;
pub use self::{checks::Checks, daemon::*, fixture::*, probe::*, terminal::Terminal};

/// Where the daemon under test serves its control socket.
pub const SOCKET: &str = "/run/kya/kya.sock";
/// Scratch directory for configs and test executables.
pub const SCRATCH: &str = "/tmp/kya-test";
/// The daemon's state directory (grants, requests, audit trail) in the tests. A new daemon
/// starts with it empty; `Daemon::restart` keeps it.
pub const STATE_DIR: &str = "/tmp/kya-test/state";
/// How long the daemon may take to start enforcing under emulation (the verifier alone takes
/// tens of seconds there).
pub(crate) const START_TIMEOUT: Duration = Duration::from_mins(3);

/// Panics unless running where kernel tests can run.
pub fn require_vm() {
    assert!(
        std::env::var_os("KYA_IN_VM").is_some(),
        "kya's integration tests load BPF LSM programs into the running kernel; run them with \
         `cargo xtask test`, which boots them in a VM"
    );
}

/// Path of a binary installed in the VM (`kya`, `kya-agent`, `kya-probe`).
#[must_use]
pub fn bin(name: &str) -> PathBuf {
    let path = Path::new("/usr/local/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing from the VM image",
        path.display()
    );
    path
}

/// A fresh scratch directory for one test.
#[must_use]
pub fn scratch(test: &str) -> PathBuf {
    scratch_root();
    let dir = Path::new(SCRATCH).join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch directory");
    dir
}

/// Runs `kya ARGS` and returns its output.
#[must_use]
pub fn kya(args: &[&str]) -> Output {
    Command::new(bin("kya"))
        .args(args)
        .output()
        .expect("run kya")
}

/// Runs `kya-agent ARGS` and returns its output.
#[must_use]
pub fn kya_agent(args: &[&str]) -> Output {
    Command::new(bin("kya-agent"))
        .args(args)
        .output()
        .expect("run kya-agent")
}

/// Runs `kya ARGS` as user `uid` (and its group of the same number).
#[must_use]
pub fn kya_as(uid: u32, args: &[&str]) -> Output {
    use std::os::unix::process::CommandExt as _;
    Command::new(bin("kya"))
        .args(args)
        .uid(uid)
        .gid(uid)
        .output()
        .expect("run kya")
}

/// Waits until `condition` holds, up to `timeout`.
pub fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    condition()
}
