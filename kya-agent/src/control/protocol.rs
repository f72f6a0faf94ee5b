//! Messages on the control socket: one JSON request line, one JSON response line (or, for
//! [`Request::Watch`], a response line per change until the caller hangs up).
use serde::{Deserialize, Serialize};

use crate::text::AgentText;

/// Largest request the daemon reads; anything longer is refused unread.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// List tagged processes. (A struct variant, so unknown fields are refused.)
    Ps {},
    /// Denials recorded after sequence number `after` (0: all that are kept).
    Events { after: u64 },
    /// Tag the calling process as `agent` (used by `kya run` right before it executes the
    /// command, so the command and everything it starts are that agent).
    Run { agent: String },
    /// What the daemon is doing: version, config, hooks, agents, grants, losses.
    Status {},
    /// List pending requests.
    Pending {},
    /// Follow pending requests (`kya watch`): the connection stays open and the daemon answers
    /// with one [`Response::Pending`] line now and another each time the list changes, until
    /// the caller closes it. Each line is the whole list, so a caller that reads slowly skips
    /// intermediate states but never misses an end state.
    Watch {},
    /// List grants in force.
    Grants {},
    /// Approve pending request `id` (`r12`): once, for `duration` (`15m`), or once within
    /// `duration`.
    Approve {
        id: String,
        once: bool,
        duration: Option<String>,
        reason: Option<String>,
        /// What proves the approval is the caller's, for an agent whose config asks for more
        /// than the caller's uid.
        #[serde(default)]
        proof: Option<Proof>,
    },
    /// Refuse pending request `id`.
    Deny { id: String },
    /// Grant ahead of time: `agent` may open the file at `file` (an absolute path), connect to
    /// `connect` (`host:port`, `1.2.3.4:443`, `[::1]:8080`) or reach the unix socket `unix` (an
    /// absolute path or `@name`).
    Grant {
        agent: String,
        file: Option<String>,
        connect: Option<String>,
        #[serde(default)]
        unix: Option<String>,
        once: bool,
        duration: Option<String>,
        reason: Option<String>,
        #[serde(default)]
        proof: Option<Proof>,
    },
    /// A challenge to sign for exactly this approval (`approve` = `r12`) or grant ahead of time
    /// (`agent` and one resource), with these terms: the text and a single-use nonce.
    Challenge {
        approve: Option<String>,
        agent: Option<String>,
        file: Option<String>,
        connect: Option<String>,
        unix: Option<String>,
        once: bool,
        duration: Option<String>,
    },
    /// Make a new TOTP secret for `user` (root only).
    TotpEnroll { user: String },
    /// Forget `user`'s TOTP secret (root only).
    TotpRemove { user: String },
    /// Read the config file again and put it in force as a whole, or change nothing. Root only.
    Reload {},
    /// End grants at once: grant `grant` (`g3`), every grant `approver` approved, or every grant
    /// of `agent`. Exactly one must be given.
    Revoke {
        grant: Option<String>,
        approver: Option<String>,
        agent: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    Processes {
        processes: Vec<TaggedProcess>,
    },
    Tagged {
        pid: u32,
        agent: String,
    },
    Events {
        events: Vec<DenialRecord>,
    },
    Status {
        status: StatusView,
    },
    Pending {
        requests: Vec<PendingView>,
    },
    Grants {
        grants: Vec<GrantView>,
    },
    /// A grant is in force (durable on disk and in the kernel).
    Granted {
        grant: GrantView,
    },
    /// A pending request was refused.
    Denied {
        request: String,
    },
    /// These grants were ended.
    Revoked {
        grants: Vec<String>,
    },
    /// A reload put the config file in force.
    Reloaded {
        config: String,
        generation: u64,
        agents: usize,
        /// Running processes that the new rules tagged.
        adopted: usize,
    },
    /// What the agent's approvals need (`uid`, `ssh-key`, `totp`) and the terms as text. For
    /// `ssh-key`, the text holds a fresh single-use `nonce`, and the text is what to sign
    /// before `expires_ms`; for the others nothing is issued (`nonce` is `None`).
    Challenge {
        approval: String,
        text: String,
        nonce: Option<String>,
        expires_ms: u64,
    },
    /// `user`'s new TOTP secret (base32) and the URI for an authenticator app.
    TotpEnrolled {
        user: String,
        secret: String,
        uri: String,
    },
    TotpRemoved {
        user: String,
        /// Whether they had a secret.
        existed: bool,
    },
    Error {
        message: String,
    },
}

/// What proves an approval is the caller's own (see `approval` in the config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Proof {
    /// An armored `ssh-keygen -Y sign -n kya-approval` signature over the text of the
    /// challenge `nonce`.
    SshKey { nonce: String, signature: String },
    /// The current code of the caller's enrolled authenticator.
    Totp { code: String },
}

/// The daemon's state as `kya status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusView {
    pub version: String,
    pub pid: u32,
    /// The config file, or `(embedded default)`.
    pub config: String,
    /// Every LSM hook and whether it is attached and enforcing.
    pub hooks: Vec<HookState>,
    pub agents: Vec<AgentStatus>,
    pub grants: usize,
    pub pending: usize,
    /// Events the kernel could not hand over because its ring buffer was full.
    pub events_lost: u64,
    /// Events the kernel did not send because their agent had used up its event budget (the
    /// denials were refused and counted all the same).
    #[serde(default)]
    pub events_over_budget: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookState {
    pub hook: String,
    pub enforcing: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentStatus {
    pub name: String,
    pub tagged_processes: u64,
    pub grants: usize,
    pub pending: usize,
    /// Why the agent is contained (its owner, what happened to the account, since when, the
    /// fix); absent when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contained: Option<String>,
}

/// One pending request as `kya pending` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingView {
    /// `r12`.
    pub id: String,
    pub agent: String,
    /// `file`, `connect` or `unix`.
    pub kind: String,
    pub resource: AgentText,
    /// What was tried most recently (`file-open`, `connect`, ...), by which process.
    pub operation: String,
    pub pid: u32,
    pub exe: Option<AgentText>,
    pub first_ms: u64,
    pub last_ms: u64,
    pub count: u64,
    /// Why it was refused (the protection's reason, as `kya events` shows it), most recently:
    /// it may quote an agent's file name, so it is shown escaped.
    #[serde(default)]
    pub why: Option<AgentText>,
}

/// One grant in force as `kya grants` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantView {
    /// `g3`.
    pub id: String,
    pub agent: String,
    /// `file`, `connect` or `unix`.
    pub kind: String,
    pub resource: AgentText,
    pub approver: String,
    pub approver_uid: u32,
    pub reason: Option<AgentText>,
    /// The request it answered (`r12`), if any.
    pub request: Option<String>,
    pub created_ms: u64,
    pub expires_ms: u64,
    /// `Some(1)` for a single-use grant not yet used; `None` for a timed grant.
    pub uses_left: Option<u64>,
    pub uses: u64,
    /// How the approver proved the approval: `uid`, `ssh-key` or `totp`.
    #[serde(default)]
    pub approval: Option<String>,
    /// For `ssh-key`: the SHA256 fingerprint of the key that signed.
    #[serde(default)]
    pub key: Option<String>,
}

/// One tagged process as `kya ps` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaggedProcess {
    pub pid: u32,
    pub agent: String,
    /// The executable's path, when it can still be read.
    pub exe: Option<AgentText>,
    /// The rule that made it (or the ancestor it inherited from) an agent:
    /// `exe`, `cgroup`, `uid` or `run`.
    pub matched_by: String,
    /// `matched` (by the rule itself), `inherited` (from its parent) or `adopted` (it was
    /// already running when the daemon started).
    pub origin: String,
    pub threads: u32,
}

/// One refused operation, as `kya events` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenialRecord {
    /// Increases by one per denial the daemon received.
    pub seq: u64,
    /// When the daemon received it (milliseconds since the Unix epoch).
    pub time_ms: u64,
    /// `file-open`, `file-access`, `file-mmap`, `file-link`, `file-rename`, `procfs`,
    /// `connect`, `send`, `unix`, `raw-socket` or `socket` (see [`crate::events::kind_name`]).
    pub kind: String,
    pub agent: String,
    /// Process id, and the thread that made the attempt.
    pub pid: u32,
    pub tid: u32,
    /// The executable's path, or its command name if the process exited first.
    pub exe: Option<AgentText>,
    /// The protected path, when the rule names one.
    pub path: Option<AgentText>,
    /// The file's own name, as the kernel saw it.
    pub name: Option<AgentText>,
    /// Device (`major:minor`) and inode of the file.
    pub dev: Option<String>,
    pub ino: Option<u64>,
    /// For `procfs`: the process the agent tried to reach.
    pub target_pid: Option<u32>,
    /// For `connect` and `send`: the peer (`1.2.3.4:80`, `[::1]:80`) and `tcp` or `udp`.
    pub peer: Option<String>,
    pub protocol: Option<String>,
    /// The host name the daemon resolved to the peer's address, when it knows one.
    pub host: Option<AgentText>,
    /// For `unix`: the server's socket, `/path` or `@name` (bytes that are not printable text
    /// escaped as `\xNN`), or the socket file's name when its address is relative.
    pub socket: Option<AgentText>,
    /// For `unix`: the server's process id, where the kernel knows it, and its executable.
    pub server_pid: Option<u32>,
    pub server_exe: Option<AgentText>,
    /// Why the object is protected; for grant activity, what happened (it may quote names).
    pub why: AgentText,
    /// Set when the record is grant activity rather than a denial: the grant (`g3`) that let
    /// the operation through, or that was approved, expired or revoked.
    pub grant: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_a_stable_wire_form() {
        assert_eq!(
            serde_json::to_string(&Request::Run {
                agent: "coder".into()
            })
            .unwrap(),
            r#"{"request":"run","agent":"coder"}"#
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"request":"ps"}"#).unwrap(),
            Request::Ps {}
        );
        assert_eq!(
            serde_json::to_string(&Request::Watch {}).unwrap(),
            r#"{"request":"watch"}"#
        );
    }

    #[test]
    fn unknown_requests_and_fields_are_refused() {
        assert!(serde_json::from_str::<Request>(r#"{"request":"unload"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"request":"ps","all":true}"#).is_err());
        assert!(serde_json::from_str::<Request>("not json").is_err());
    }
}
