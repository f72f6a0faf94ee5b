//! What one line of the audit trail holds, and how a line is hashed and read back.
//!
//! The hash is always taken over the bytes as they are in the file, never over a
//! re-serialization, so the check does not depend on how serde_json orders or spaces fields.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The `prev` of the first record: there is no line before it.
pub const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The fields the log adds to every record; a caller's body may not use them.
pub const RESERVED_KEYS: [&str; 3] = ["seq", "time_ms", "prev"];

/// Longest rendering of a wrong value quoted in a [`LineProblem`].
const MAX_VALUE_CHARS: usize = 40;

/// The last record of a trail: what the daemon saves in its state file so that a trail cut short
/// at the end (which leaves the chain itself intact) is still caught.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// The last record's `seq`; 0 when the trail is empty.
    pub seq: u64,
    /// SHA-256 of the last line (lowercase hex); [`ZERO_HASH`] when the trail is empty.
    pub hash: String,
}

impl AuditHead {
    /// The head of a trail with no records.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            seq: 0,
            hash: ZERO_HASH.to_owned(),
        }
    }
}

/// One record as written to or read from the trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    /// Milliseconds since the Unix epoch when the record was written.
    pub time_ms: u64,
    /// SHA-256 of the line before (lowercase hex); [`ZERO_HASH`] for the first record.
    pub prev: String,
    /// SHA-256 of this record's own line, the `prev` of the next record.
    pub hash: String,
    /// The caller's fields: everything in the line but `seq`, `time_ms` and `prev`.
    pub body: Map<String, Value>,
}

/// Why a line could not be read as a record.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum LineProblem {
    #[error("not valid JSON ({0})")]
    NotJson(String),
    #[error("not a JSON object")]
    NotObject,
    #[error("has no `{0}` field")]
    Missing(&'static str),
    #[error("`{field}` is {found}, not {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: String,
    },
}

/// SHA-256 of `line` (without its newline) in lowercase hex.
#[must_use]
pub fn line_hash(line: &[u8]) -> String {
    Sha256::digest(line)
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            write!(hex, "{byte:02x}").expect("writing to a String cannot fail");
            hex
        })
}

/// Reads one line (without its newline) as a record.
pub(crate) fn parse_line(line: &[u8]) -> Result<AuditRecord, LineProblem> {
    let value: Value =
        serde_json::from_slice(line).map_err(|error| LineProblem::NotJson(error.to_string()))?;
    let Value::Object(mut body) = value else {
        return Err(LineProblem::NotObject);
    };
    let seq = take_u64(&mut body, "seq")?;
    let time_ms = take_u64(&mut body, "time_ms")?;
    let prev = take_hash(&mut body, "prev")?;
    Ok(AuditRecord {
        seq,
        time_ms,
        prev,
        hash: line_hash(line),
        body,
    })
}

fn take_u64(object: &mut Map<String, Value>, field: &'static str) -> Result<u64, LineProblem> {
    let value = object.remove(field).ok_or(LineProblem::Missing(field))?;
    value
        .as_u64()
        .ok_or_else(|| wrong_type(field, "an unsigned integer", &value))
}

fn take_hash(object: &mut Map<String, Value>, field: &'static str) -> Result<String, LineProblem> {
    let value = object.remove(field).ok_or(LineProblem::Missing(field))?;
    match value {
        Value::String(text) if is_hash(&text) => Ok(text),
        other => Err(wrong_type(field, "64 lowercase hex digits", &other)),
    }
}

fn is_hash(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

fn wrong_type(field: &'static str, expected: &'static str, found: &Value) -> LineProblem {
    let mut found = found.to_string();
    if found.chars().count() > MAX_VALUE_CHARS {
        found = found.chars().take(MAX_VALUE_CHARS).collect::<String>() + "…";
    }
    LineProblem::WrongType {
        field,
        expected,
        found,
    }
}
