//! Config errors as the user reads them: `file:line:column: message`, the offending value, and
//! the fix. Every problem in a file is collected before anything is reported.

use std::{
    fmt, io,
    ops::Range,
    path::{Path, PathBuf},
};

use thiserror::Error;

use super::{
    network_rule::RuleProblem, path_pattern::PatternProblem, socket_path::SocketPathProblem,
};
use crate::paths;

/// Longest source excerpt shown on a `value:` line before it is cut short.
const MAX_VALUE_CHARS: usize = 80;

/// A 1-based position in the config source, counted in characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The position of byte `offset` in `text`. Offsets past the end or inside a character are
    /// clamped back to the nearest character boundary.
    #[must_use]
    pub fn of(text: &str, offset: usize) -> Self {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        Self {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

/// Which kind of TOML or schema problem the TOML parser reported; it decides the fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TomlProblem {
    /// The text is not valid TOML.
    Syntax,
    /// A key that this table does not have.
    UnknownKey,
    /// A required key is absent.
    MissingKey,
    /// A value of the wrong type or out of range.
    WrongType,
    /// The same key twice in one table.
    DuplicateKey,
}

impl TomlProblem {
    /// Classifies a message from `toml`; the schema messages are serde's fixed wording.
    fn classify(message: &str) -> Self {
        if message.starts_with("unknown field") {
            Self::UnknownKey
        } else if message.starts_with("missing field") {
            Self::MissingKey
        } else if message.starts_with("invalid type")
            || message.starts_with("invalid value")
            || message.starts_with("invalid length")
        {
            Self::WrongType
        } else if message.starts_with("duplicate") {
            Self::DuplicateKey
        } else {
            Self::Syntax
        }
    }
}

/// What is wrong with a path in `match.exe` or `match.cgroup`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathProblem {
    /// It does not start with `/`.
    NotAbsolute,
    /// It has a `..` component.
    ParentComponent,
    /// It has an empty component (`//`).
    EmptyComponent,
    /// It ends with `/`.
    TrailingSlash,
    /// It is the cgroup2 root, `/`.
    CgroupRoot,
    /// It starts with the cgroup2 mount point, which the config leaves out.
    CgroupMountPrefix,
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAbsolute => "does not start with '/'",
            Self::ParentComponent => "contains a '..' component",
            Self::EmptyComponent => "contains an empty component ('//')",
            Self::TrailingSlash => "ends with '/'",
            Self::CgroupRoot => "is the cgroup2 root, which holds every process on the host",
            Self::CgroupMountPrefix => "starts with the cgroup2 mount point",
        })
    }
}

/// Which list of `[agents.files]` a pattern is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileList {
    Protect,
    Allow,
    ProtectWrites,
    AllowWrites,
}

impl fmt::Display for FileList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Protect => "files.protect",
            Self::Allow => "files.allow",
            Self::ProtectWrites => "files.protect_writes",
            Self::AllowWrites => "files.allow_writes",
        })
    }
}

/// Which socket list of `[agents.network]` an entry is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnixList {
    Deny,
    Allow,
}

impl fmt::Display for UnixList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Deny => "network.unix_deny",
            Self::Allow => "network.unix_allow",
        })
    }
}

/// What is wrong. The `Display` text is the error's message.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    #[error("cannot read the config file: {source}")]
    Read {
        #[source]
        source: io::Error,
    },
    /// Reported by the TOML parser: a syntax error, or a key or value the schema does not allow.
    #[error("{message}")]
    Toml {
        message: String,
        problem: TomlProblem,
    },
    #[error("invalid agent name {name:?}: names must match [a-z0-9][a-z0-9_-]{{0,31}}")]
    InvalidAgentName { name: String },
    #[error("duplicate agent name {name:?}: line {first_line} already defines an agent with it")]
    DuplicateAgentName { name: String, first_line: usize },
    #[error("agent {name:?} has the same id ({id}) as agent {other:?}")]
    AgentIdCollision {
        name: String,
        other: String,
        id: u32,
    },
    #[error("agent {agent:?} has an empty owner")]
    EmptyOwner { agent: String },
    #[error(
        "on_owner_gone of agent {agent:?} is {value:?}, which is neither \"contain\" nor \"stop\""
    )]
    InvalidOnOwnerGone { agent: String, value: String },
    #[error(
        "approvers entry {name:?} of agent {agent:?} is not a valid user name: user names \
         match [a-z_][a-z0-9_-]*[$]? and are at most 32 characters long"
    )]
    InvalidApprover { agent: String, name: String },
    #[error("approvers of agent {agent:?} list {name:?} twice")]
    DuplicateApprover { agent: String, name: String },
    #[error("approval of agent {agent:?} is {value:?}, not one of uid, ssh-key, totp")]
    InvalidApprovalMethod { agent: String, value: String },
    #[error(
        "agent {agent:?} requires ssh-key approvals, but none of those who may approve for it \
         ({deciders}) has a key in [approver_keys]"
    )]
    NoApproverKeys { agent: String, deciders: String },
    #[error("[approver_keys] names {name:?}, which is not a valid user name")]
    InvalidKeyUser { name: String },
    #[error("[approver_keys] entry of {user:?} is not an OpenSSH public key: {problem}")]
    InvalidApproverKey { user: String, problem: String },
    #[error("[approver_keys] lists the same key twice for {user:?}")]
    DuplicateApproverKey { user: String },
    #[error("match.exe path of agent {agent:?} {problem}")]
    InvalidExe { agent: String, problem: PathProblem },
    #[error("match.cgroup path of agent {agent:?} {problem}")]
    InvalidCgroup { agent: String, problem: PathProblem },
    #[error("match.exe path of agent {agent:?} is also in match.exe of agent {other:?}")]
    DuplicateExe { agent: String, other: String },
    #[error("match.cgroup path of agent {agent:?} is also in match.cgroup of agent {other:?}")]
    DuplicateCgroup { agent: String, other: String },
    #[error("match.uid {uid} of agent {agent:?} is also in match.uid of agent {other:?}")]
    DuplicateUid {
        agent: String,
        other: String,
        uid: u32,
    },
    #[error("match.uid of agent {agent:?} contains uid 0 (root)")]
    RootUid { agent: String },
    #[error("{list} path of agent {agent:?} {problem}")]
    InvalidFilePattern {
        agent: String,
        list: FileList,
        problem: PatternProblem,
    },
    #[error(
        "files.allow_writes path of agent {agent:?} is {pattern:?}, which is neither an entry \
         of the foothold catalogue nor inside one of its trees"
    )]
    NotAFoothold { agent: String, pattern: String },
    #[error("network.allow entry of agent {agent:?}: {problem}")]
    InvalidNetworkRule { agent: String, problem: RuleProblem },
    #[error("{list} entry of agent {agent:?} {problem}")]
    InvalidSocketPath {
        agent: String,
        list: UnixList,
        problem: SocketPathProblem,
    },
}

/// The fix for a wrong `on_owner_gone`.
const ON_OWNER_GONE_FIX: &str = "write on_owner_gone = \"contain\" (revoke the agent's grants and \
                                 suspend its allowlists) or on_owner_gone = \"stop\" (also kill \
                                 its processes)";

impl ConfigErrorKind {
    /// What the user should do about it.
    #[must_use]
    /// The fix for a problem with verified approvals (`approval`, `[approver_keys]`).
    fn approval_fix(&self) -> String {
        match self {
            Self::InvalidKeyUser { name } => user_name_fix(name),
            Self::InvalidApprovalMethod { .. } => "write approval = \"uid\" (the caller's uid is \
                    enough, the default), \"ssh-key\" (a signature by a key in [approver_keys]) or \
                    \"totp\" (a code from an authenticator enrolled with `kya totp enroll`)"
                .into(),
            Self::NoApproverKeys { deciders, .. } => format!(
                "add a public key line for at least one of {deciders} to [approver_keys] (such \
                     as alice = [\"ssh-ed25519 AAAA... alice@laptop\"], the line of their .pub \
                     file), or choose another approval"
            ),
            Self::InvalidApproverKey { .. } => "paste the whole line of the user's public key \
                    file (ssh-keygen writes it to KEY.pub): TYPE BASE64 [COMMENT], such as \
                    ssh-ed25519 AAAAC3Nza... alice@laptop"
                .into(),
            Self::DuplicateApproverKey { .. } => "remove the second copy of the key".into(),
            _ => String::new(),
        }
    }

    pub fn fix(&self) -> String {
        match self {
            Self::Read { source } => match source.kind() {
                io::ErrorKind::NotFound => format!(
                    "create the file (the default config embedded in kya is a commented \
                     starting point) or pass the right path; the daemon reads {} by default",
                    paths::DEFAULT_CONFIG
                ),
                io::ErrorKind::PermissionDenied => {
                    "make the file readable by the user the daemon runs as (normally root)".into()
                }
                io::ErrorKind::InvalidData => "save the file as UTF-8 text".into(),
                _ => "check that the path names a readable regular file".into(),
            },
            Self::Toml { problem, .. } => match problem {
                TomlProblem::Syntax => {
                    "correct the TOML syntax at this position (see https://toml.io)".into()
                }
                TomlProblem::UnknownKey => {
                    "remove the key or correct its spelling; the keys allowed here are listed \
                     above"
                        .into()
                }
                TomlProblem::MissingKey => "add the missing key to this table".into(),
                TomlProblem::WrongType => "write the value with the type named above: paths, \
                                           names and addresses are quoted strings, uids are \
                                           unquoted integers, allow_dns is true or false, \
                                           lists are in [brackets]"
                    .into(),
                TomlProblem::DuplicateKey => "keep only one of the two keys".into(),
            },
            Self::InvalidAgentName { name } => {
                let fix = "use 1 to 32 lowercase letters, digits, '_' or '-', starting with a \
                           letter or digit (agent names become Prometheus label values)";
                match suggest_agent_name(name) {
                    Some(suggestion) => format!("{fix}, for example {suggestion:?}"),
                    None => fix.to_owned(),
                }
            }
            Self::DuplicateAgentName { .. } => "give each [[agents]] entry its own name".into(),
            Self::AgentIdCollision { .. } => "rename one of the two agents: an agent's id is a \
                                              32-bit hash of its name and two names hash to the \
                                              same id"
                .into(),
            Self::EmptyOwner { .. } => "set owner to the user name of the human accountable \
                                        for this agent, e.g. owner = \"alice\""
                .into(),
            Self::InvalidOnOwnerGone { .. } => ON_OWNER_GONE_FIX.into(),
            Self::InvalidApprover { name, .. } => user_name_fix(name),

            Self::DuplicateApprover { name, .. } => {
                format!("remove this {name:?}: listing a user once is enough")
            }
            Self::InvalidExe { problem, .. } => match problem {
                PathProblem::NotAbsolute => "write the full path of the executable, starting \
                                             with '/', e.g. \"/usr/local/bin/coder-agent\""
                    .into(),
                PathProblem::ParentComponent => {
                    "write the path without '..' components: name the executable directly".into()
                }
                PathProblem::TrailingSlash => {
                    "name the executable file itself, without a trailing '/'".into()
                }
                _ => "write the absolute path of the executable file".into(),
            },
            Self::InvalidCgroup { problem, .. } => match problem {
                PathProblem::NotAbsolute => format!(
                    "write the path relative to the cgroup2 mount ({}) starting with '/', \
                     e.g. \"/agents/coder\"",
                    paths::CGROUP2_ROOT
                ),
                PathProblem::CgroupRoot => {
                    "name a subtree that holds only the agent's processes, e.g. \"/agents/coder\""
                        .into()
                }
                PathProblem::CgroupMountPrefix => format!(
                    "leave out {}: cgroup paths are relative to the cgroup2 mount, e.g. \
                     \"/agents/coder\"",
                    paths::CGROUP2_ROOT
                ),
                PathProblem::ParentComponent => {
                    "write the path without '..' components: name the cgroup directly".into()
                }
                PathProblem::EmptyComponent => "write each '/' once".into(),
                PathProblem::TrailingSlash => "remove the trailing '/'".into(),
            },
            Self::DuplicateExe { .. }
            | Self::DuplicateCgroup { .. }
            | Self::DuplicateUid { .. } => {
                "a process can belong to only one agent: keep this rule in one of the two agents"
                    .into()
            }
            Self::RootUid { .. } => "tagging uid 0 would confine every root process; use exe \
                                     or cgroup"
                .into(),
            Self::InvalidFilePattern { problem, .. } => problem.fix().into(),
            Self::NotAFoothold { .. } => NOT_A_FOOTHOLD_FIX.into(),
            Self::InvalidNetworkRule { problem, .. } => problem.fix(),
            Self::InvalidSocketPath { problem, .. } => problem.fix(),
            // `approval` and `[approver_keys]`.
            _ => self.approval_fix(),
        }
    }
}

const NOT_A_FOOTHOLD_FIX: &str = "name an entry that `kya-agent check-config` lists under \
                                  execution footholds (for example \"~/.profile\" or \
                                  \"/etc/cron.d/\"), or a path inside one of its trees; \
                                  allow_writes exempts nothing else";

/// A valid agent name close to `name`, if there is an obvious one.
fn suggest_agent_name(name: &str) -> Option<String> {
    let replaced: String = name
        .trim()
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_' | '-') => c,
            _ => '-',
        })
        .collect();
    let mut suggestion = replaced.trim_start_matches(['-', '_']).to_owned();
    suggestion.truncate(super::agent::MAX_NAME_LEN);
    (super::agent::is_valid_name(&suggestion) && suggestion != name).then_some(suggestion)
}

/// The fix for the invalid user name `name`, with a valid one close to it if there is an obvious
/// one: the same name without surrounding blanks, in lowercase.
fn user_name_fix(name: &str) -> String {
    let fix = "write the user's login name as useradd accepts it: 1 to 32 lowercase letters, \
               digits, '_' or '-', starting with a letter or '_' (a final '$' is allowed); the \
               user need not exist yet";
    let suggestion = name.trim().to_ascii_lowercase();
    if super::agent::is_valid_user_name(&suggestion) && suggestion != name {
        format!("{fix}, for example {suggestion:?}")
    } else {
        fix.to_owned()
    }
}

/// One problem in one config file.
#[derive(Debug)]
pub struct ConfigError {
    file: PathBuf,
    location: Option<Location>,
    value: Option<String>,
    kind: ConfigErrorKind,
}

impl ConfigError {
    /// An error about the whole file (it could not be read), with no position in it.
    pub(super) fn whole_file(file: &Path, kind: ConfigErrorKind) -> Self {
        Self {
            file: file.to_owned(),
            location: None,
            value: None,
            kind,
        }
    }

    /// The file the error is in.
    #[must_use]
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The 1-based line of the offending value, if the error has a position.
    #[must_use]
    pub fn line(&self) -> Option<usize> {
        self.location.map(|location| location.line)
    }

    /// The 1-based column (in characters) of the offending value, if the error has a position.
    #[must_use]
    pub fn column(&self) -> Option<usize> {
        self.location.map(|location| location.column)
    }

    /// What is wrong, on one line.
    #[must_use]
    pub fn message(&self) -> String {
        self.kind.to_string()
    }

    /// The offending value as written in the file.
    #[must_use]
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// What to do about it.
    #[must_use]
    pub fn fix(&self) -> String {
        self.kind.fix()
    }

    #[must_use]
    pub fn kind(&self) -> &ConfigErrorKind {
        &self.kind
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file.display())?;
        if let Some(Location { line, column }) = self.location {
            write!(f, "{line}:{column}:")?;
        }
        write!(f, " {}", self.kind)?;
        if let Some(value) = &self.value {
            write!(f, "\n  value: {value}")?;
        }
        write!(f, "\n  fix: {}", self.kind.fix())
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

/// Every problem found in a config file; never empty.
#[derive(Debug)]
pub struct ConfigErrors {
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    #[must_use]
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.errors.iter()
    }

    #[must_use]
    pub fn into_errors(self) -> Vec<ConfigError> {
        self.errors
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        Self {
            errors: vec![error],
        }
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.errors.iter().enumerate() {
            if index > 0 {
                f.write_str("\n\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

// The errors are the message: Display already renders every one of them in full.
impl std::error::Error for ConfigErrors {}

/// Collects the errors found in one source text, placing each at its span.
pub(super) struct Diagnostics<'a> {
    file: &'a Path,
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl<'a> Diagnostics<'a> {
    pub(super) fn new(file: &'a Path, text: &'a str) -> Self {
        Self {
            file,
            text,
            errors: Vec::new(),
        }
    }

    /// Records an error about the value written at `span`.
    pub(super) fn error(&mut self, span: Range<usize>, kind: ConfigErrorKind) {
        let value = self.text.get(span.clone()).and_then(excerpt);
        self.push(span.start, value, kind);
    }

    /// Records an error from the TOML parser. Its span may cover a single character or a whole
    /// table, so the value shown is the source line where it starts.
    pub(super) fn toml_error(&mut self, error: &toml::de::Error) {
        let message = error.message().trim().replace('\n', "; ");
        let problem = TomlProblem::classify(&message);
        let kind = ConfigErrorKind::Toml { message, problem };
        match error.span() {
            Some(span) => {
                let start = span.start.min(self.text.len());
                let line_start = self.text[..start]
                    .rfind('\n')
                    .map_or(0, |newline| newline + 1);
                let line_end = self.text[start..]
                    .find('\n')
                    .map_or(self.text.len(), |newline| start + newline);
                let value = excerpt(&self.text[line_start..line_end]);
                self.push(start, value, kind);
            }
            None => self.errors.push(ConfigError::whole_file(self.file, kind)),
        }
    }

    fn push(&mut self, offset: usize, value: Option<String>, kind: ConfigErrorKind) {
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            location: Some(Location::of(self.text, offset)),
            value,
            kind,
        });
    }

    /// The 1-based line of byte `offset`.
    pub(super) fn line_of(&self, offset: usize) -> usize {
        Location::of(self.text, offset).line
    }

    /// `Ok` if nothing was recorded, or every error in source order.
    pub(super) fn finish(mut self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() {
            return Ok(());
        }
        // Stable, so errors at the same position keep the order they were found in.
        self.errors.sort_by_key(|error| error.location);
        Err(ConfigErrors {
            errors: self.errors,
        })
    }
}

/// The first line of `text`, trimmed and cut to a readable length; `None` if nothing is left.
fn excerpt(text: &str) -> Option<String> {
    let line = text.lines().next().unwrap_or_default().trim();
    if line.is_empty() {
        return None;
    }
    if line.chars().count() > MAX_VALUE_CHARS {
        let cut: String = line.chars().take(MAX_VALUE_CHARS).collect();
        return Some(format!("{cut}..."));
    }
    Some(line.to_owned())
}
