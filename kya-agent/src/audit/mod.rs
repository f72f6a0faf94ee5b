//! The audit trail: an append-only, hash-chained log of what the daemon decided and why.
//!
//! One JSON object per line. Each line carries `seq` (1, 2, 3, …), `time_ms` and `prev`, the
//! SHA-256 of the previous line's exact bytes, so editing, removing, inserting or reordering a
//! record breaks the chain at the line after it. Removing records from the end leaves the chain
//! intact; the daemon keeps the last [`AuditHead`] in its state file to catch that.
//!
//! - `record`: what a line holds, and how it is hashed and read back.
//! - `problem`: what can be wrong with a trail, in the words a reader needs.
//! - `chain`: reading the file line by line and checking each line against the one before.
//! - `log`: [`AuditLog`], the writer, and [`read_records`] for replay at start-up.
//! - `verify`: [`verify`], the full check behind `kya audit verify`.

mod chain;
mod error;
mod log;
mod problem;
mod record;
mod verify;

#[cfg(test)]
mod tests;

pub use self::{
    error::AuditError,
    log::{AuditLog, read_records},
    problem::{Problem, ProblemKind},
    record::{AuditHead, AuditRecord, LineProblem, RESERVED_KEYS, ZERO_HASH, line_hash},
    verify::{Anchor, VerifyReport, read_anchor, verify},
};
