//! The executables, cgroups and config that the tests share.
use std::path::{Path, PathBuf};

use crate::{SCRATCH, bin, require_vm};

/// Executables and cgroups shared by the tests, and the config that names them.
pub struct Fixture {
    /// A copy of `kya-probe` named in agent `coder`'s `match.exe`.
    pub coder_exe: PathBuf,
    /// A copy of `kya-probe` named in agent `ops`'s `match.exe`.
    pub ops_exe: PathBuf,
    pub config: String,
}

/// The cgroup (below the cgroup2 mount) named in agent `coder`'s `match.cgroup`.
pub const CODER_CGROUP: &str = "/agents/coder";
/// The uid named in agent `coder`'s `match.uid`.
pub const CODER_UID: u32 = 1001;

impl Fixture {
    /// Creates the executables and cgroups and returns the config naming them.
    #[must_use]
    pub fn new() -> Self {
        require_vm();
        let bin_dir = Path::new(SCRATCH).join("bin");
        std::fs::create_dir_all(&bin_dir).expect("scratch bin");
        let coder_exe = bin_dir.join("coder-agent");
        let ops_exe = bin_dir.join("ops-agent");
        for exe in [&coder_exe, &ops_exe] {
            if !exe.exists() {
                std::fs::copy(bin("kya-probe"), exe).expect("copy probe");
            }
        }
        for cgroup in [CODER_CGROUP, "/agents/other"] {
            std::fs::create_dir_all(cgroup_dir(cgroup)).expect("create cgroup");
        }
        let config = format!(
            r#"
[[agents]]
name = "coder"
owner = "alice"
[agents.match]
exe = ["{coder}"]
cgroup = ["{CODER_CGROUP}"]
uid = [{CODER_UID}]

[[agents]]
name = "ops"
owner = "bob"
[agents.match]
exe = ["{ops}"]
"#,
            coder = coder_exe.display(),
            ops = ops_exe.display(),
        );
        Self {
            coder_exe,
            ops_exe,
            config,
        }
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

/// The directory of a cgroup given relative to the cgroup2 mount.
#[must_use]
pub fn cgroup_dir(cgroup: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup").join(cgroup.trim_start_matches('/'))
}
