//! A cap on how many denials per second are written to the log, so that a flooding agent
//! cannot flood the journal (or slow the daemon down writing it). The metrics count every
//! denial whatever the log shows.
use std::time::{Duration, Instant};

/// Denial lines logged per second at most.
const LINES_PER_SECOND: u32 = 50;
const WINDOW: Duration = Duration::from_secs(1);

pub struct LogLimit {
    window_start: Instant,
    logged: u32,
    suppressed: u64,
}

impl Default for LogLimit {
    fn default() -> Self {
        Self {
            window_start: Instant::now(),
            logged: 0,
            suppressed: 0,
        }
    }
}

impl LogLimit {
    /// Whether one more denial may be logged now. Reports what was held back once its second
    /// is over.
    pub fn allow(&mut self) -> bool {
        if self.window_start.elapsed() >= WINDOW {
            if self.suppressed > 0 {
                tracing::warn!(
                    suppressed = self.suppressed,
                    "more denials than the log shows (at most {LINES_PER_SECOND} per second); \
                     kya_denied_total counts every one"
                );
            }
            *self = Self::default();
        }
        if self.logged < LINES_PER_SECOND {
            self.logged += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_lines_beyond_the_rate() {
        let mut limit = LogLimit::default();
        let allowed = (0..LINES_PER_SECOND * 3).filter(|_| limit.allow()).count();
        assert_eq!(allowed, LINES_PER_SECOND as usize);
        limit.window_start -= WINDOW;
        assert!(limit.allow(), "a new second allows again");
    }
}
