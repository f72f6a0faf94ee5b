//! Why a grant request was refused or failed, in words the human who asked can act on.
use std::path::{Path, PathBuf};

use crate::{
    approvals::ProofError,
    daemon::kernel_task::KernelCallError,
    error_chain,
    grants::{LabelError, authority::NotAllowed, duration::DurationError, store::StoreError},
};

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error("{user} (uid {uid}) may not {what} TOTP secrets; run `kya totp {what} USER` as root")]
    TotpRootOnly {
        user: String,
        uid: u32,
        what: &'static str,
    },
    #[error("`{0}` is not a user name (lowercase letters, digits, '_' or '-')")]
    NotAUser(String),
    #[error(transparent)]
    Label(#[from] LabelError),
    #[error(transparent)]
    Duration(#[from] DurationError),
    #[error("say how long the grant lasts: --once (one use) or --for DURATION (such as 15m)")]
    NoTerms,
    #[error("the reason is longer than {max} characters; shorten it")]
    ReasonTooLong { max: usize },
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    #[error(
        "unknown agent `{name}`; agents in {}: {}",
        .config.display(),
        if .known.is_empty() { "none".to_owned() } else { .known.join(", ") }
    )]
    UnknownAgent {
        name: String,
        config: PathBuf,
        known: Vec<String>,
    },
    /// The agent is contained (its owner's account is gone); the text says why and the fix.
    #[error("{0}")]
    Contained(String),
    #[error(
        "your account {user} {gone}: a gone account approves nothing; ask a living approver (or \
         root)"
    )]
    CallerGone {
        user: String,
        gone: crate::accounts::Gone,
    },
    #[error("no pending request {0}; `kya pending` lists the open ones")]
    NoPendingRequest(String),
    #[error("no grant {0} in force; `kya grants` lists them")]
    NoGrant(String),
    #[error("only root (or {0} themselves) may void every grant {0} approved")]
    NotTheirApprovals(String),
    #[error("name exactly one of: a grant id (g3), --approver USER or --agent NAME")]
    RevokeWhat,
    #[error("nothing was revoked: {0}")]
    NothingRevoked(Box<GrantError>),
    #[error("revoked {revoked:?} before failing: {source}")]
    PartlyRevoked {
        revoked: Vec<String>,
        source: Box<GrantError>,
    },
    #[error(
        "a challenge is for a pending request (kya approve rN) or a grant (kya grant --agent \
         NAME with one resource)"
    )]
    ChallengeWhat,
    #[error("name exactly one resource: --file PATH, --connect HOST:PORT or --unix PATH|@NAME")]
    OneResource,
    #[error(
        "file `{}` is not an absolute path; the daemon cannot know your directory",
        .0.display()
    )]
    RelativePath(PathBuf),
    #[error("file `{}`: {source}", .path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "`{}` resolves to `{}` (through a symlink or `..`); a file grant covers the file \
         itself, so it is granted by its real path, which `kya grants` will show: run \
         `kya grant --agent {agent} --file {}` with the same --once or --for",
        .typed.display(), .real.display(), .real.display()
    )]
    ResolvesElsewhere {
        typed: PathBuf,
        real: PathBuf,
        agent: String,
    },
    #[error("{}", another_name(.typed, .object, *.tree, .agent))]
    AnotherName {
        typed: PathBuf,
        object: PathBuf,
        tree: bool,
        agent: String,
    },
    #[error("`{}` is not a regular file; grants cover single files", .0.display())]
    NotAFile(PathBuf),
    #[error("`{}` is a unix socket: grant it with --unix PATH", .0.display())]
    SocketNotFile(PathBuf),
    #[error("`{}` is not protected from agent `{agent}`; it needs no grant", .path.display())]
    NotProtected { path: PathBuf, agent: String },
    /// `kya grant --connect` named no usable peer.
    #[error("{0}")]
    Peer(String),
    /// `kya grant --unix` named no socket.
    #[error("{0}")]
    Unix(String),
    #[error("recording the decision failed, nothing changed: {}", error_chain(.0))]
    Record(StoreError),
    #[error("agent `{0}` is no longer configured")]
    AgentGone(String),
    #[error("{}", error_chain(.0))]
    Kernel(#[from] KernelCallError),
    #[error("the kernel refused the grant, so it was revoked: {0}")]
    KernelRefused(Box<GrantError>),
}

/// The message of [`GrantError::AnotherName`].
fn another_name(typed: &Path, object: &Path, tree: bool, agent: &str) -> String {
    let (what, fix) = if tree {
        (
            format!("a file inside the protected tree `{}`", object.display()),
            format!(
                "run `kya grant --agent {agent} --file` with its path inside `{}`",
                object.display()
            ),
        )
    } else {
        (
            format!("the protected file `{}`", object.display()),
            format!(
                "run `kya grant --agent {agent} --file {}` with the same --once or --for",
                object.display()
            ),
        )
    };
    format!(
        "`{}` is another name (a hard link, or the file mounted elsewhere) of {what}; a file \
         grant covers the file itself under every name, so it is granted by its protected \
         name, which `kya grants` will show: {fix}",
        typed.display()
    )
}
