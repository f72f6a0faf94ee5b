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
    /// The fixture's config with alice as coder's only approver.
    #[must_use]
    pub fn config_with_alice_approving(&self) -> String {
        self.config.replacen(
            "owner = \"alice\"\n",
            "owner = \"alice\"\napprovers = [\"alice\"]\n",
            1,
        )
    }

    /// [`config_with_alice_approving`](Self::config_with_alice_approving) split before the
    /// `ops` agent: coder's part (with everything before it) and ops's (after its name), for a
    /// test that appends sections to each agent.
    #[must_use]
    pub fn split_at_ops_with_alice_approving(&self) -> (String, String) {
        let config = self.config_with_alice_approving();
        let (coder, ops) = config
            .split_once("[[agents]]\nname = \"ops\"")
            .expect("fixture has an ops agent");
        (coder.to_owned(), ops.to_owned())
    }

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
