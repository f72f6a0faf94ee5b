//! Expectations checked to the end, so that one run of a test shows every one that failed.
use crate::{EPERM, OpResult};

/// Every failed expectation of a test; [`Checks::finish`] reports them all.
#[derive(Default)]
pub struct Checks(Vec<String>);

impl Checks {
    /// `result` must be a refusal by kya (EPERM).
    pub fn denied(&mut self, result: &OpResult, what: &str) {
        if result != &Err(EPERM) {
            self.fail(format!("{what}: must be denied with EPERM, got {result:?}"));
        }
    }

    /// `result` must be a success.
    pub fn allowed(&mut self, result: &OpResult, what: &str) {
        if result.is_err() {
            self.fail(format!("{what}: must succeed, got {result:?}"));
        }
    }

    /// `result` may fail, but not with kya's EPERM.
    pub fn not_refused(&mut self, result: &OpResult, what: &str) {
        if result == &Err(EPERM) {
            self.fail(format!(
                "{what}: must not be refused by kya, got {result:?}"
            ));
        }
    }

    /// `holds` must be true.
    pub fn that(&mut self, holds: bool, what: &str) {
        if !holds {
            self.fail(what.to_owned());
        }
    }

    /// Records a failed expectation.
    pub fn fail(&mut self, what: String) {
        self.0.push(what);
    }

    /// Panics with every failed expectation, if any.
    pub fn finish(self) {
        assert!(self.0.is_empty(), "failed:\n{}", self.0.join("\n"));
    }
}
