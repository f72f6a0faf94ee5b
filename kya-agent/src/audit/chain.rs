//! Reading the trail line by line, and checking each line against the one before it.
//!
//! Both [`AuditLog::open`](super::AuditLog::open) and [`verify`](super::verify) walk the file
//! through [`Chain`], so the daemon and `kya audit verify` agree on what a broken trail is and on
//! which `seq` comes next.

use std::io::{self, BufRead};

use super::{
    problem::{Problem, ProblemKind},
    record::{AuditHead, ZERO_HASH, line_hash, parse_line},
};

/// One line of the file, without its newline.
pub(crate) struct Line {
    /// 1-based, as editors count.
    pub number: u64,
    /// Where the line starts in the file.
    pub offset: u64,
    pub bytes: Vec<u8>,
    /// False for a last line with no newline: a write cut short, never acknowledged.
    pub terminated: bool,
}

/// The lines of a file, read one at a time so that a long trail is never held in memory.
pub(crate) struct Lines<R> {
    reader: R,
    number: u64,
    offset: u64,
}

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            number: 0,
            offset: 0,
        }
    }
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = io::Result<Line>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut bytes = Vec::new();
        match self.reader.read_until(b'\n', &mut bytes) {
            Ok(0) => None,
            Ok(read) => {
                let offset = self.offset;
                self.offset += read as u64;
                self.number += 1;
                let terminated = bytes.last() == Some(&b'\n');
                if terminated {
                    bytes.pop();
                }
                Some(Ok(Line {
                    number: self.number,
                    offset,
                    bytes,
                    terminated,
                }))
            }
            Err(error) => Some(Err(error)),
        }
    }
}

/// What [`Chain::push`] learnt about one line.
pub(crate) struct Checked {
    /// The record's own `seq`, if the line could be read at all.
    pub seq: Option<u64>,
    /// SHA-256 of the line.
    pub hash: String,
    pub problems: Vec<Problem>,
}

/// The running state of a walk along the chain.
pub(crate) struct Chain {
    /// The last line's hash: the `prev` the next line must carry.
    last_hash: String,
    /// The last line's `seq`. A line that cannot be read counts as one record, so that the next
    /// `seq` the daemon writes is the one `verify` expects after it.
    last_seq: u64,
    /// The last line's number, 0 before the first.
    last_line: u64,
    /// Lines that were readable and chained correctly to the line before them.
    good: u64,
}

impl Chain {
    pub fn new() -> Self {
        Self {
            last_hash: ZERO_HASH.to_owned(),
            last_seq: 0,
            last_line: 0,
            good: 0,
        }
    }

    /// Checks one complete line against the line before it and moves on to it.
    pub fn push(&mut self, line: &Line) -> Checked {
        let hash = line_hash(&line.bytes);
        let (seq, problems) = match parse_line(&line.bytes) {
            Ok(record) => (
                Some(record.seq),
                self.check(line.number, record.seq, &record.prev),
            ),
            Err(problem) => (
                None,
                vec![Problem {
                    line: Some(line.number),
                    seq: None,
                    kind: ProblemKind::BadLine(problem),
                }],
            ),
        };
        if problems.is_empty() {
            self.good += 1;
        }
        self.last_seq = seq.unwrap_or_else(|| self.last_seq.saturating_add(1));
        self.last_hash.clone_from(&hash);
        self.last_line = line.number;
        Checked {
            seq,
            hash,
            problems,
        }
    }

    /// The `seq` and `prev` checks for a line that parsed.
    fn check(&self, line: u64, seq: u64, prev: &str) -> Vec<Problem> {
        let problem = |kind| Problem {
            line: Some(line),
            seq: Some(seq),
            kind,
        };
        let mut problems = Vec::new();
        let expected = self.last_seq.saturating_add(1);
        if seq != expected {
            problems.push(problem(ProblemKind::SeqMismatch {
                found: seq,
                expected,
            }));
        }
        if prev != self.last_hash {
            problems.push(problem(if self.last_line == 0 {
                ProblemKind::FirstPrevNotZero
            } else {
                ProblemKind::PrevMismatch {
                    previous_line: self.last_line,
                }
            }));
        }
        problems
    }

    /// The last line's `seq` and hash: what the next record continues from.
    pub fn head(&self) -> AuditHead {
        AuditHead {
            seq: self.last_seq,
            hash: self.last_hash.clone(),
        }
    }

    pub fn good(&self) -> u64 {
        self.good
    }
}
