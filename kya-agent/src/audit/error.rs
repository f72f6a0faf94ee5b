//! Why the audit trail could not be opened, written or read: each names the file and the fix.

use std::{io, path::PathBuf};

use thiserror::Error;

use super::record::LineProblem;

#[derive(Debug, Error)]
pub enum AuditError {
    #[error(
        "cannot create {}, the audit trail's directory (create it, mode 0700, owned by the daemon's user)",
        path.display()
    )]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot open the audit trail {} (check that it exists and its permissions)", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the audit trail {} is already open for writing by another process (is a second kya-agent running? stop it)",
        path.display()
    )]
    Locked {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the audit trail {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot drop the unfinished last {bytes} bytes of the audit trail {} (check the disk and the file's permissions)",
        path.display()
    )]
    Truncate {
        path: PathBuf,
        bytes: u64,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot write to the audit trail {}; the record was not stored (check free space and the file's permissions)",
        path.display()
    )]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot flush the audit trail {} to disk; the record may not survive a crash and was not stored (check the disk)",
        path.display()
    )]
    Sync {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("a record for the audit trail {} does not serialize to JSON (a bug in kya)", path.display())]
    Serialize {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "a record for the audit trail {} is a JSON {found}, not an object (a bug in kya: records must be structs or maps)",
        path.display()
    )]
    BodyNotObject { path: PathBuf, found: &'static str },
    #[error(
        "a record for the audit trail {} has its own `{key}` field, which the log adds itself (a bug in kya: rename the field)",
        path.display()
    )]
    ReservedKey { path: PathBuf, key: &'static str },
    #[error(
        "{}:{line}: the audit trail is damaged here (run `kya audit verify` for the whole picture)",
        path.display()
    )]
    BadLine {
        path: PathBuf,
        line: u64,
        #[source]
        problem: LineProblem,
    },
    #[error(
        "cannot read the audit anchor in {} (it must be a JSON object whose `audit_head` is {{\"seq\": N, \"hash\": \"hex\"}})",
        path.display()
    )]
    BadState {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}
