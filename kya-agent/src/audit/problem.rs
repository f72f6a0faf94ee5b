//! What can be wrong with a trail, in terms of what must have happened to the file: the
//! findings of the chain check and of the full verification alike.
use std::fmt;

use super::record::{AuditHead, LineProblem};

/// Hex digits of a hash quoted in a message: enough to tell two apart.
const SHORT_HASH: usize = 12;

/// One thing wrong with a trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The line it was found on (1-based), if it belongs to one.
    pub line: Option<u64>,
    /// That line's `seq`, if it could be read.
    pub seq: Option<u64>,
    pub kind: ProblemKind,
}

/// What is wrong, in terms of what must have happened to the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// The file could not be read (at all, or from this line on).
    Unreadable { error: String },
    /// The line is not a record.
    BadLine(LineProblem),
    /// The line's `seq` is not one more than the line before.
    SeqMismatch { found: u64, expected: u64 },
    /// The first line's `prev` is not [`ZERO_HASH`](super::ZERO_HASH).
    FirstPrevNotZero,
    /// The line's `prev` is not the hash of the line before.
    PrevMismatch { previous_line: u64 },
    /// The trail has no record with the anchor's `seq`.
    AnchorMissing { anchor: AuditHead, last_seq: u64 },
    /// The record with the anchor's `seq` does not hash to the anchor's hash.
    AnchorMismatch { anchor: AuditHead },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.seq) {
            (Some(line), Some(seq)) => write!(f, "line {line} (seq {seq}): {}", self.kind),
            (Some(line), None) => write!(f, "line {line}: {}", self.kind),
            (None, _) => write!(f, "{}", self.kind),
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable { error } => write!(f, "cannot read the file: {error}"),
            Self::BadLine(problem) => {
                write!(f, "{problem}: the record was edited or damaged")
            }
            Self::SeqMismatch { found, expected } if found > expected => write!(
                f,
                "seq is {found} where {expected} was expected: records before it were removed or moved"
            ),
            Self::SeqMismatch { found, expected } => write!(
                f,
                "seq is {found} where {expected} was expected: this record was inserted, copied or moved"
            ),
            Self::FirstPrevNotZero => write!(
                f,
                "prev is not all zeros, as the first record's must be: records before it were removed"
            ),
            Self::PrevMismatch { previous_line } => write!(
                f,
                "prev does not match line {previous_line}: the record before it was edited, removed or moved"
            ),
            Self::AnchorMissing { anchor, last_seq } if *last_seq < anchor.seq => write!(
                f,
                "the anchor names seq {} but the trail ends at seq {last_seq}: records at the end were removed",
                anchor.seq
            ),
            Self::AnchorMissing { anchor, .. } => write!(
                f,
                "the anchor names seq {}, which is not in the trail: that record was removed",
                anchor.seq
            ),
            Self::AnchorMismatch { anchor } => write!(
                f,
                "does not hash to the anchor's {}…: the record was edited",
                short(&anchor.hash)
            ),
        }
    }
}

fn short(hash: &str) -> &str {
    hash.get(..SHORT_HASH).unwrap_or(hash)
}
