//! [`AuditLog`], the only writer of the trail, and [`read_records`] for replay at start-up.
//!
//! A record is acknowledged only once it is on disk: [`AuditLog::append`] writes the whole line
//! with one `write` on an `O_APPEND` descriptor and then `fdatasync`s. A crash can therefore only
//! leave an unfinished last line without its newline, which was never acknowledged and which
//! [`AuditLog::open`] drops.

use std::{
    fs::{DirBuilder, File, OpenOptions},
    io::{BufReader, Seek as _, SeekFrom, Write as _},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{
    chain::{Chain, Line, Lines},
    error::AuditError,
    record::{AuditHead, AuditRecord, RESERVED_KEYS, line_hash, parse_line},
};

/// Mode of a new trail: it may hold agent and user names, so only the daemon's user reads it.
const FILE_MODE: u32 = 0o600;

/// Mode of directories created for the trail.
const DIR_MODE: u32 = 0o700;

/// Problems logged one by one when a damaged trail is opened; the rest are only counted, so a
/// badly damaged file does not flood the journal (`kya audit verify` lists them all).
const MAX_LOGGED_PROBLEMS: usize = 20;

/// The open trail. Holds an exclusive `flock` on the file: two writers would fork the chain.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Flock<File>,
    /// The last line's `seq` and hash: what the next record continues from.
    head: AuditHead,
    /// The file's length after the last acknowledged record: where a failed write is cut back to.
    len: u64,
    /// A failed write could not be cut back, so `head` and `len` may not describe the file; the
    /// next append reads the file again first.
    stale: bool,
}

/// What reading an opened trail learnt.
struct Scanned {
    head: AuditHead,
    len: u64,
}

impl AuditLog {
    /// Opens the trail at `path` for appending, creating it and its directories if missing.
    ///
    /// An unfinished last line (a write cut short by a crash) is dropped. A damaged trail is still
    /// opened, because the daemon must keep recording: the damage is logged and new records chain
    /// to the last line as it is.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        create_parent(path)?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(FILE_MODE)
            .open(path)
            .map_err(|source| AuditError::Open {
                path: path.to_owned(),
                source,
            })?;
        let file = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
            AuditError::Locked {
                path: path.to_owned(),
                source: errno.into(),
            }
        })?;
        let Scanned { head, len } = scan(&file, path)?;
        Ok(Self {
            path: path.to_owned(),
            file,
            head,
            len,
            stale: false,
        })
    }

    /// The last record's `seq` and hash, for the daemon to save as the trail's anchor.
    #[must_use]
    pub fn head(&self) -> AuditHead {
        self.head.clone()
    }

    /// The file this log writes.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `body` (which must serialize to a JSON object without `seq`, `time_ms` or `prev`)
    /// as the next record and returns once it is on disk.
    pub fn append(&mut self, body: &impl Serialize) -> Result<AuditRecord, AuditError> {
        if self.stale {
            let Scanned { head, len } = scan(&self.file, &self.path)?;
            (self.head, self.len, self.stale) = (head, len, false);
        }
        let body = self.body(body)?;
        let seq = self.head.seq.saturating_add(1);
        let time_ms = now_ms();
        let line = render(seq, time_ms, &self.head.hash, &body);
        let hash = line_hash(&line);
        self.write_line(line)?;
        let prev = std::mem::replace(
            &mut self.head,
            AuditHead {
                seq,
                hash: hash.clone(),
            },
        )
        .hash;
        Ok(AuditRecord {
            seq,
            time_ms,
            prev,
            hash,
            body,
        })
    }

    /// `body` as a JSON object, refusing what the log could not tell apart from its own fields.
    fn body(&self, body: &impl Serialize) -> Result<Map<String, Value>, AuditError> {
        let value = serde_json::to_value(body).map_err(|source| AuditError::Serialize {
            path: self.path.clone(),
            source,
        })?;
        let Value::Object(body) = value else {
            return Err(AuditError::BodyNotObject {
                path: self.path.clone(),
                found: json_kind(&value),
            });
        };
        match RESERVED_KEYS
            .into_iter()
            .find(|key| body.contains_key(*key))
        {
            Some(key) => Err(AuditError::ReservedKey {
                path: self.path.clone(),
                key,
            }),
            None => Ok(body),
        }
    }

    /// Writes `line` and its newline in one `write_all` and flushes it to disk. On failure the
    /// file is cut back so that no half-written record is left for the next one to chain to.
    fn write_line(&mut self, mut line: Vec<u8>) -> Result<(), AuditError> {
        line.push(b'\n');
        let path = &self.path;
        let result = self
            .file
            .write_all(&line)
            .map_err(|source| AuditError::Write {
                path: path.clone(),
                source,
            })
            .and_then(|()| {
                self.file.sync_data().map_err(|source| AuditError::Sync {
                    path: path.clone(),
                    source,
                })
            });
        match result {
            Ok(()) => {
                self.len += line.len() as u64;
                Ok(())
            }
            Err(error) => {
                self.roll_back();
                Err(error)
            }
        }
    }

    /// Cuts the file back to its last acknowledged record after a failed write.
    fn roll_back(&mut self) {
        if let Err(error) = self
            .file
            .set_len(self.len)
            .and_then(|()| self.file.sync_all())
        {
            tracing::error!(
                path = %self.path.display(),
                %error,
                "cannot cut the audit trail back after a failed write; it will be read again before the next record"
            );
            self.stale = true;
        }
    }
}

/// Reads the whole opened trail to learn its head, drops an unfinished last line and logs any
/// damage.
fn scan(mut file: &File, path: &Path) -> Result<Scanned, AuditError> {
    // Reads move the shared file offset and appends leave it at the end; start from the top.
    file.seek(SeekFrom::Start(0))
        .map_err(|source| AuditError::Read {
            path: path.to_owned(),
            source,
        })?;
    let mut chain = Chain::new();
    let mut problems = Vec::new();
    let mut len = 0;
    for line in Lines::new(BufReader::new(file)) {
        let line = line.map_err(|source| AuditError::Read {
            path: path.to_owned(),
            source,
        })?;
        if !line.terminated {
            drop_torn_tail(file, path, &line)?;
            break;
        }
        len = line.offset + line.bytes.len() as u64 + 1;
        problems.extend(chain.push(&line).problems);
    }
    log_damage(path, &problems);
    Ok(Scanned {
        head: chain.head(),
        len,
    })
}

/// Cuts off `line`, the unfinished last line: it was never acknowledged, and the next record
/// must start on a line of its own.
fn drop_torn_tail(file: &File, path: &Path, line: &Line) -> Result<(), AuditError> {
    let bytes = line.bytes.len() as u64;
    file.set_len(line.offset)
        .and_then(|()| file.sync_all())
        .map_err(|source| AuditError::Truncate {
            path: path.to_owned(),
            bytes,
            source,
        })?;
    tracing::warn!(
        path = %path.display(),
        dropped_bytes = bytes,
        "dropped an unfinished record at the end of the audit trail: a write cut short by a crash, never acknowledged"
    );
    Ok(())
}

fn log_damage(path: &Path, problems: &[super::Problem]) {
    for problem in problems.iter().take(MAX_LOGGED_PROBLEMS) {
        tracing::error!(
            path = %path.display(),
            %problem,
            "the audit trail is damaged; new records are chained to its last line"
        );
    }
    if problems.len() > MAX_LOGGED_PROBLEMS {
        tracing::error!(
            path = %path.display(),
            more = problems.len() - MAX_LOGGED_PROBLEMS,
            "the audit trail has more damage; run `kya audit verify` to list it all"
        );
    }
}

/// Creates the trail's directory (and its parents) if missing, readable by the daemon only.
fn create_parent(path: &Path) -> Result<(), AuditError> {
    let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    else {
        return Ok(());
    };
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(parent)
        .map_err(|source| AuditError::CreateDir {
            path: parent.to_owned(),
            source,
        })
}

/// The line for a record, without its newline: the log's three fields first, then the body's,
/// so a reader sees the chain before the content.
fn render(seq: u64, time_ms: u64, prev: &str, body: &Map<String, Value>) -> Vec<u8> {
    let mut line = format!(r#"{{"seq":{seq},"time_ms":{time_ms},"prev":"{prev}""#).into_bytes();
    for (key, value) in body {
        line.push(b',');
        serde_json::to_writer(&mut line, key).expect("a string serializes to a Vec");
        line.push(b':');
        serde_json::to_writer(&mut line, value).expect("a JSON value serializes to a Vec");
    }
    line.push(b'}');
    line
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every record in the trail at `path`, in file order, for the daemon to replay at start-up.
/// A line that is not a record is an error naming it; an unfinished last line (never
/// acknowledged) is left out with a warning.
pub fn read_records(path: &Path) -> Result<Vec<AuditRecord>, AuditError> {
    let file = File::open(path).map_err(|source| AuditError::Open {
        path: path.to_owned(),
        source,
    })?;
    let mut records = Vec::new();
    for line in Lines::new(BufReader::new(file)) {
        let line = line.map_err(|source| AuditError::Read {
            path: path.to_owned(),
            source,
        })?;
        if !line.terminated {
            tracing::warn!(
                path = %path.display(),
                line = line.number,
                bytes = line.bytes.len(),
                "ignoring an unfinished record at the end of the audit trail: a write cut short by a crash, never acknowledged"
            );
            break;
        }
        let record = parse_line(&line.bytes).map_err(|problem| AuditError::BadLine {
            path: path.to_owned(),
            line: line.number,
            problem,
        })?;
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_stale_log_reads_the_file_again_before_appending() {
        let dir = std::env::temp_dir().join(format!("kya-audit-stale-{}", std::process::id()));
        let path = dir.join("audit.jsonl");
        let mut log = AuditLog::open(&path).expect("a new trail opens");
        log.append(&json!({"n": 1})).expect("append works");
        let head = log.append(&json!({"n": 2})).expect("append works");
        // What a failed roll-back leaves: nothing known about the file.
        (log.head, log.len, log.stale) = (AuditHead::empty(), 0, true);
        let record = log
            .append(&json!({"n": 3}))
            .expect("append after re-reading works");
        assert_eq!((record.seq, &record.prev), (3, &head.hash));
        assert!(super::super::verify(&path, None).is_intact());
        drop(log);
        std::fs::remove_dir_all(&dir).expect("the test dir is removable");
    }
}
