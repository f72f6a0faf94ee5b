//! Every filesystem path the daemon and the `kya` tool use, in one place.
//!
//! Nothing else in the crate spells out a path literal: tests and the loader take these
//! constants (or a path derived from them) so a packager can see the whole footprint here.

/// The configuration file read at start-up unless `--config` names another one.
pub const DEFAULT_CONFIG: &str = "/etc/kya/kya.toml";

/// The daemon's control socket: `kya` connects here to query and change the running daemon.
pub const CONTROL_SOCKET: &str = "/run/kya/kya.sock";

/// Persistent daemon state that must survive a restart.
pub const STATE_DIR: &str = "/var/lib/kya";

/// The append-only, hash-chained audit trail, a file in [`STATE_DIR`].
pub const AUDIT_LOG_FILE: &str = "audit.jsonl";

/// The daemon's persisted state (grants, the audit head), a file in [`STATE_DIR`].
pub const STATE_FILE: &str = "state.json";

/// Where the kernel programs and maps are pinned in bpffs, so that a daemon restart does not
/// drop enforcement.
pub const BPF_PIN_DIR: &str = "/sys/fs/bpf/kya";

/// The running kernel's BTF, read to find struct field offsets (Rust eBPF has no CO-RE).
pub const BTF_VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// The comma-separated list of active LSMs; BPF LSM only enforces when `bpf` is in it.
pub const SECURITYFS_LSM: &str = "/sys/kernel/security/lsm";

/// The cgroup2 mount point; `match.cgroup` paths in the config are relative to it.
pub const CGROUP2_ROOT: &str = "/sys/fs/cgroup";

/// The proc filesystem, walked to adopt agent processes already running at start-up.
pub const PROC: &str = "/proc";

/// The local user database, read for every user's home directory: `~/` in the built-in
/// credential catalogue and in `[agents.files]` means that path in each of them.
pub const PASSWD: &str = "/etc/passwd";

/// root's home directory, always one of the homes `~/` expands to, even if the user database
/// cannot be read or says otherwise.
pub const ROOT_HOME: &str = "/root";

/// The resolver configuration, read for its `nameserver` lines: with `network.allow_dns` agents
/// may reach those resolvers on port 53.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The TOTP secrets of `kya totp enroll` and the codes used, a file in [`STATE_DIR`] (0600,
/// protected from agents with the rest of the state directory).
pub const TOTP_FILE: &str = "totp.json";
