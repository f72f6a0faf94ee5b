//! The full check of a trail, as `kya audit verify` runs it, and the anchor it checks against.
//!
//! The chain alone proves that no record was edited, removed, inserted or moved *before* the
//! last one; only an anchor (the head the daemon last saved elsewhere) shows that records at the
//! end were not removed or the last one edited.

use std::{
    fs::File,
    io::{self, BufReader},
    path::{Path, PathBuf},
};

use serde_json::Value;

use super::{
    chain::{Chain, Lines},
    error::AuditError,
    problem::{Problem, ProblemKind},
    record::AuditHead,
};

/// The state-file field that holds the anchor.
const AUDIT_HEAD_FIELD: &str = "audit_head";

/// The outcome of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub path: PathBuf,
    /// Complete lines read.
    pub lines: u64,
    /// Lines that are records and chain correctly to the line before them.
    pub good: u64,
    /// The last line's `seq` and hash.
    pub head: AuditHead,
    /// Everything wrong, in file order, anchor problems last.
    pub problems: Vec<Problem>,
    /// Bytes after the last newline: a write cut short by a crash and never acknowledged, which
    /// the daemon drops at its next start. Not a problem with the records.
    pub torn_tail: Option<u64>,
}

impl VerifyReport {
    /// No problems: every record is intact and in place (up to the anchor, if one was given).
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }

    /// The file could not be read to the end, so the report is incomplete.
    #[must_use]
    pub fn read_failed(&self) -> bool {
        self.problems
            .iter()
            .any(|problem| matches!(problem.kind, ProblemKind::Unreadable { .. }))
    }
}

/// Checks the whole trail at `path`: every line is a record, `seq` counts up by one from 1, each
/// `prev` is the hash of the line before and, given an `anchor`, the record with its `seq` is
/// there and hashes to its hash. Never fails: what cannot be read is one of the problems.
#[must_use]
pub fn verify(path: &Path, anchor: Option<&AuditHead>) -> VerifyReport {
    let mut report = VerifyReport {
        path: path.to_owned(),
        lines: 0,
        good: 0,
        head: AuditHead::empty(),
        problems: Vec::new(),
        torn_tail: None,
    };
    let anchored = match File::open(path) {
        Ok(file) => walk(file, anchor, &mut report),
        Err(error) => {
            report.problems.push(unreadable(None, &error));
            return report;
        }
    };
    if let Some(anchor) = anchor {
        report
            .problems
            .extend(check_anchor(anchor, anchored, &report.head));
    }
    report
}

/// Walks every line into `report`; returns the line number and hash of the record with the
/// anchor's `seq`, if there is one (the one that hashes to the anchor's hash, if several do).
fn walk(
    file: File,
    anchor: Option<&AuditHead>,
    report: &mut VerifyReport,
) -> Option<(u64, String)> {
    let mut chain = Chain::new();
    let mut anchored = None;
    for line in Lines::new(BufReader::new(file)) {
        let line = match line {
            Ok(line) => line,
            Err(error) => {
                report
                    .problems
                    .push(unreadable(Some(report.lines + 1), &error));
                break;
            }
        };
        if !line.terminated {
            report.torn_tail = Some(line.bytes.len() as u64);
            break;
        }
        report.lines += 1;
        let checked = chain.push(&line);
        if let Some(anchor) = anchor.filter(|anchor| checked.seq == Some(anchor.seq)) {
            // With a duplicated seq, the line that matches the anchor is the anchored one.
            if anchored
                .as_ref()
                .is_none_or(|(_, hash)| *hash != anchor.hash)
            {
                anchored = Some((line.number, checked.hash));
            }
        }
        report.problems.extend(checked.problems);
    }
    report.good = chain.good();
    report.head = chain.head();
    anchored
}

fn check_anchor(
    anchor: &AuditHead,
    anchored: Option<(u64, String)>,
    head: &AuditHead,
) -> Option<Problem> {
    if anchor.seq == 0 {
        return None;
    }
    match anchored {
        None => Some(Problem {
            line: None,
            seq: None,
            kind: ProblemKind::AnchorMissing {
                anchor: anchor.clone(),
                last_seq: head.seq,
            },
        }),
        Some((line, hash)) if hash != anchor.hash => Some(Problem {
            line: Some(line),
            seq: Some(anchor.seq),
            kind: ProblemKind::AnchorMismatch {
                anchor: anchor.clone(),
            },
        }),
        Some(_) => None,
    }
}

fn unreadable(line: Option<u64>, error: &io::Error) -> Problem {
    Problem {
        line,
        seq: None,
        kind: ProblemKind::Unreadable {
            error: error.to_string(),
        },
    }
}

/// What the state file says about the trail's head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// There is no state file (the daemon has not saved one yet).
    NoStateFile,
    /// The state file has no `audit_head`.
    NoHead,
    Head(AuditHead),
}

/// Reads the anchor the daemon saves as `audit_head` in its state file at `path`.
pub fn read_anchor(path: &Path) -> Result<Anchor, AuditError> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Anchor::NoStateFile),
        Err(source) => {
            return Err(AuditError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let bad_state = |source| AuditError::BadState {
        path: path.to_owned(),
        source,
    };
    let mut state: serde_json::Map<String, Value> =
        serde_json::from_slice(&text).map_err(bad_state)?;
    match state.remove(AUDIT_HEAD_FIELD) {
        None => Ok(Anchor::NoHead),
        Some(head) => serde_json::from_value(head)
            .map(Anchor::Head)
            .map_err(bad_state),
    }
}
