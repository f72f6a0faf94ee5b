//! A validated agent: its name, its numeric id, its accountable owner, the users who may
//! approve access for it and the rules that tag its processes.

use std::{fmt, path::PathBuf};

use super::{network_rule::NetworkRule, path_pattern::PathPattern, socket_path::SocketAddress};

/// Longest agent name, in bytes (names are ASCII).
pub const MAX_NAME_LEN: usize = 32;

/// Longest user name in `approvers`, in bytes: the limit `useradd` applies.
pub const MAX_USER_NAME_LEN: usize = 32;

/// An agent's numeric id, the one the kernel stores in each tagged task: the 32-bit FNV-1a hash
/// of the agent's name, with 0 (which the kernel reads as "no agent") replaced by 1.
///
/// Being a function of the name alone, the id is stable across restarts and config reloads, so
/// tags written by an earlier daemon still name the same agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(u32);

impl AgentId {
    const FNV_OFFSET_BASIS: u32 = 0x811c_9dc5;
    const FNV_PRIME: u32 = 0x0100_0193;

    /// The id of the agent called `name`.
    #[must_use]
    pub const fn from_name(name: &str) -> Self {
        let bytes = name.as_bytes();
        let mut hash = Self::FNV_OFFSET_BASIS;
        let mut index = 0;
        while index < bytes.len() {
            hash ^= bytes[index] as u32;
            hash = hash.wrapping_mul(Self::FNV_PRIME);
            index += 1;
        }
        if hash == 0 { Self(1) } else { Self(hash) }
    }

    /// The id in a value read from the kernel, or `None` for 0 ("no agent").
    #[must_use]
    pub const fn from_raw(raw: u32) -> Option<Self> {
        if raw == 0 { None } else { Some(Self(raw)) }
    }

    /// The value the kernel stores; never 0.
    #[must_use]
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl From<AgentId> for u32 {
    fn from(id: AgentId) -> Self {
        id.get()
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Whether `name` matches `[a-z0-9][a-z0-9_-]{0,31}`: safe as a Prometheus label value, a file
/// name and a command-line argument.
#[must_use]
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            bytes.len() <= MAX_NAME_LEN
                && matches!(first, b'a'..=b'z' | b'0'..=b'9')
                && rest
                    .iter()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
        }
        None => false,
    }
}

/// Whether `name` matches `[a-z_][a-z0-9_-]*[$]?` and is at most [`MAX_USER_NAME_LEN`] bytes:
/// the user names `useradd` accepts by default (the `$` ends Samba machine accounts).
#[must_use]
pub fn is_valid_user_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let body = bytes.strip_suffix(b"$").unwrap_or(bytes);
    match body.split_first() {
        Some((first, rest)) => {
            bytes.len() <= MAX_USER_NAME_LEN
                && matches!(first, b'a'..=b'z' | b'_')
                && rest
                    .iter()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
        }
        None => false,
    }
}

/// How a human proves an approval is theirs (`approval = ...` of an agent).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovalMethod {
    /// The caller's uid on the control socket is enough (anyone with a shell as them approves).
    #[default]
    Uid,
    /// A signature (`ssh-keygen -Y sign`) over the exact terms, by a key in `[approver_keys]`.
    SshKey,
    /// A one-time code (RFC 6238) from the caller's enrolled authenticator.
    Totp,
}

impl ApprovalMethod {
    /// Every method, as written in the config.
    pub const NAMES: [&'static str; 3] = ["uid", "ssh-key", "totp"];

    /// The method called `name` in the config.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "uid" => Some(Self::Uid),
            "ssh-key" => Some(Self::SshKey),
            "totp" => Some(Self::Totp),
            _ => None,
        }
    }

    /// Its name in the config, the audit trail and `kya grants`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Uid => "uid",
            Self::SshKey => "ssh-key",
            Self::Totp => "totp",
        }
    }
}

impl fmt::Display for ApprovalMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One `[[agents]]` entry, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub(super) id: AgentId,
    pub(super) name: String,
    pub(super) owner: String,
    pub(super) approvers: Vec<String>,
    pub(super) approval: ApprovalMethod,
    pub(super) on_owner_gone: OnOwnerGone,
    pub(super) rules: MatchRules,
    pub(super) files: FileRules,
    pub(super) network: NetworkRules,
}

impl Agent {
    #[must_use]
    pub fn id(&self) -> AgentId {
        self.id
    }

    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The user name of the human accountable for the agent.
    #[must_use]
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The user names allowed to approve access for this agent, in file order, each once;
    /// empty when the config lists none. Root may always approve, which the daemon enforces:
    /// it is not added here. The users need not exist when the config is loaded.
    #[must_use]
    pub fn approvers(&self) -> &[String] {
        &self.approvers
    }

    /// Whether `user_name` is listed in `approvers`. Root gets no special case here: the
    /// daemon decides that, and whether the caller is one of the agent's own uids.
    #[must_use]
    pub fn may_be_approved_by(&self, user_name: &str) -> bool {
        self.approvers.iter().any(|approver| approver == user_name)
    }

    /// What an approval for this agent must carry besides the caller's uid.
    #[must_use]
    pub fn approval(&self) -> ApprovalMethod {
        self.approval
    }

    /// What the daemon does when the owner's account is gone (`on_owner_gone`).
    #[must_use]
    pub fn on_owner_gone(&self) -> OnOwnerGone {
        self.on_owner_gone
    }

    /// Drops every exemption the agent's config gives it: `files.allow`, `files.allow_writes`,
    /// `network.allow`, `network.unix_allow`, and DNS. What a contained agent is left with.
    pub(super) fn suspend_allowlists(&mut self) {
        self.files.allow.clear();
        self.files.allow_writes.clear();
        self.network.allow.clear();
        self.network.allow_lines.clear();
        self.network.unix_allow.clear();
        self.network.allow_dns = false;
    }

    /// The `[agents.match]` rules; all empty when the agent is only started with `kya run`.
    #[must_use]
    pub fn rules(&self) -> &MatchRules {
        &self.rules
    }

    /// The `[agents.files]` additions to and exemptions from the built-in credential catalogue;
    /// both empty when the agent has no such table.
    #[must_use]
    pub fn files(&self) -> &FileRules {
        &self.files
    }

    /// The `[agents.network]` rules; [`NetworkRules::default`] when the agent has no such
    /// table.
    #[must_use]
    pub fn network(&self) -> &NetworkRules {
        &self.network
    }
}

/// `on_owner_gone`: what happens to an agent whose owner's account is gone (removed, locked
/// or expired). Either way its grants are revoked and its allowlists suspended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnOwnerGone {
    /// Its processes keep running, contained.
    #[default]
    Contain,
    /// Its processes are also killed, at once and again every second while contained.
    Stop,
}

/// `[agents.match]`: a process belongs to the agent if any one rule matches it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MatchRules {
    pub(super) exe: Vec<PathBuf>,
    pub(super) cgroup: Vec<PathBuf>,
    pub(super) uid: Vec<u32>,
}

impl MatchRules {
    /// Absolute paths of executables: a process that execs one of these files is tagged.
    #[must_use]
    pub fn exe(&self) -> &[PathBuf] {
        &self.exe
    }

    /// cgroup2 paths relative to the cgroup2 mount, each starting with `/`: a process in one of
    /// these subtrees is tagged.
    #[must_use]
    pub fn cgroup(&self) -> &[PathBuf] {
        &self.cgroup
    }

    /// Uids (never 0): a process running as one of them is tagged.
    #[must_use]
    pub fn uid(&self) -> &[u32] {
        &self.uid
    }

    /// Whether the agent has no rules at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.exe.is_empty() && self.cgroup.is_empty() && self.uid.is_empty()
    }
}

/// `[agents.files]`: how this agent's file protection differs from the built-in catalogue,
/// which applies to every agent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileRules {
    pub(super) protect: Vec<PathPattern>,
    pub(super) allow: Vec<PathPattern>,
    pub(super) protect_writes: Vec<PathPattern>,
    pub(super) allow_writes: Vec<PathPattern>,
}

impl FileRules {
    /// Files and trees protected from this agent in addition to the catalogue, in file order
    /// (repeats kept).
    #[must_use]
    pub fn protect(&self) -> &[PathPattern] {
        &self.protect
    }

    /// Files and trees this agent may read although the catalogue (or its own `protect`)
    /// covers them, in file order (repeats kept).
    #[must_use]
    pub fn allow(&self) -> &[PathPattern] {
        &self.allow
    }

    /// Files and trees this agent may read but not change, in addition to the foothold
    /// catalogue, in file order (repeats kept).
    #[must_use]
    pub fn protect_writes(&self) -> &[PathPattern] {
        &self.protect_writes
    }

    /// Entries of the foothold catalogue (or files inside its trees) this agent may change
    /// after all, in file order (repeats kept).
    #[must_use]
    pub fn allow_writes(&self) -> &[PathPattern] {
        &self.allow_writes
    }

    /// Whether the agent has neither additions nor exemptions.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.protect.is_empty()
            && self.allow.is_empty()
            && self.protect_writes.is_empty()
            && self.allow_writes.is_empty()
    }
}

/// `[agents.network]`: which peers this agent may connect to, which unix sockets it may reach
/// besides its own servers and the built-in serving ones, and which more it is refused like
/// the built-in credential sockets (both lists are in the network module).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkRules {
    pub(super) allow: Vec<NetworkRule>,
    /// The 1-based line of each `allow` entry in the config file (0: not from a file).
    pub(super) allow_lines: Vec<usize>,
    pub(super) unix_deny: Vec<SocketAddress>,
    pub(super) unix_allow: Vec<SocketAddress>,
    pub(super) allow_dns: bool,
}

impl NetworkRules {
    /// Whether the agent may reach the host's resolvers (the `nameserver` lines of
    /// `/etc/resolv.conf`) on port 53 when `allow_dns` is not written.
    pub const DEFAULT_ALLOW_DNS: bool = true;

    /// The peers this agent may connect to, in file order (repeats kept): addresses and
    /// networks as written, host names lowercased.
    #[must_use]
    pub fn allow(&self) -> &[NetworkRule] {
        &self.allow
    }

    /// The 1-based line of the config file where `allow()[index]` is written, for messages.
    #[must_use]
    pub fn allow_line(&self, index: usize) -> Option<usize> {
        self.allow_lines
            .get(index)
            .copied()
            .filter(|&line| line > 0)
    }

    /// Sockets refused to this agent like the built-in credential sockets, in file order
    /// (repeats kept): paths (absolute, without `.`, `..`, `//`, globs or a trailing `/`) and
    /// abstract names.
    #[must_use]
    pub fn unix_deny(&self) -> &[SocketAddress] {
        &self.unix_deny
    }

    /// Sockets this agent may connect and send to, whoever serves them, even where the
    /// built-in credential sockets (or its own `unix_deny`) cover them, in file order (repeats
    /// kept). Same form as `unix_deny`.
    #[must_use]
    pub fn unix_allow(&self) -> &[SocketAddress] {
        &self.unix_allow
    }

    /// Whether the agent may reach the resolvers in `/etc/resolv.conf` on port 53.
    #[must_use]
    pub fn allow_dns(&self) -> bool {
        self.allow_dns
    }
}

impl Default for NetworkRules {
    /// What an agent without `[agents.network]` gets: no peers but DNS, and the built-in
    /// socket denials unchanged.
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            allow_lines: Vec::new(),
            unix_deny: Vec::new(),
            unix_allow: Vec::new(),
            allow_dns: Self::DEFAULT_ALLOW_DNS,
        }
    }
}
