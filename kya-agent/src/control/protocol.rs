//! Messages on the control socket: one JSON request line, one JSON response line.
use serde::{Deserialize, Serialize};

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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    Processes { processes: Vec<TaggedProcess> },
    Tagged { pid: u32, agent: String },
    Events { events: Vec<DenialRecord> },
    Error { message: String },
}

/// One tagged process as `kya ps` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaggedProcess {
    pub pid: u32,
    pub agent: String,
    /// The executable's path, when it can still be read.
    pub exe: Option<String>,
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
    /// `connect`, `send`, `unix` or `raw-socket`.
    pub kind: String,
    pub agent: String,
    /// Process id, and the thread that made the attempt.
    pub pid: u32,
    pub tid: u32,
    /// The executable's path, or its command name if the process exited first.
    pub exe: Option<String>,
    /// The protected path, when the rule names one.
    pub path: Option<String>,
    /// The file's own name, as the kernel saw it.
    pub name: Option<String>,
    /// Device (`major:minor`) and inode of the file.
    pub dev: Option<String>,
    pub ino: Option<u64>,
    /// For `procfs`: the process the agent tried to reach.
    pub target_pid: Option<u32>,
    /// For `connect` and `send`: the peer (`1.2.3.4:80`, `[::1]:80`) and `tcp` or `udp`.
    pub peer: Option<String>,
    pub protocol: Option<String>,
    /// The host name the daemon resolved to the peer's address, when it knows one.
    pub host: Option<String>,
    /// Why the object is protected.
    pub why: String,
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
    }

    #[test]
    fn unknown_requests_and_fields_are_refused() {
        assert!(serde_json::from_str::<Request>(r#"{"request":"unload"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"request":"ps","all":true}"#).is_err());
        assert!(serde_json::from_str::<Request>("not json").is_err());
    }
}
