//! One request to the daemon, with the CLI's uniform error reporting.
use std::{path::Path, process::ExitCode};

use kya_agent::{
    control::{
        client,
        protocol::{Request, Response},
    },
    text::escape_lines,
};

/// Sends `request`; on an error answer or a failed call, prints `kya COMMAND: ...` to stderr
/// and returns the exit code to end with.
pub fn ask(socket: &Path, command: &str, request: &Request) -> Result<Response, ExitCode> {
    match client::call(socket, request) {
        Ok(Response::Error { message }) => {
            eprintln!("kya {command}: {}", escape_lines(&message));
            Err(ExitCode::FAILURE)
        }
        Ok(response) => Ok(response),
        Err(error) => {
            eprintln!("kya {command}: {error}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// For an answer of the wrong kind (a daemon of another version).
pub fn unexpected(command: &str, response: &Response) -> ExitCode {
    eprintln!("kya {command}: unexpected answer from kya-agent: {response:?}");
    ExitCode::FAILURE
}

/// Milliseconds since the epoch as `2026-12-01 05:05:05 UTC`.
pub fn time(ms: u64) -> String {
    let seconds = ms / 1_000;
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_date(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 as a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_date(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
pub mod tests {
    use kya_agent::text::{AgentText, needs_escape};

    /// A name an agent could give a file, a program or a socket: a newline, an escape sequence
    /// that clears the screen, a right-to-left override, a backslash and a byte that is not
    /// UTF-8.
    pub const HOSTILE: &[u8] = b"/tmp/a\nb\x1b[2J\xe2\x80\xaec\\\xff";
    /// How `HOSTILE` is shown.
    pub const SHOWN: &str = r"/tmp/a\nb\x1b[2J\u{202e}c\\\xff";

    /// `HOSTILE` followed by `suffix`.
    pub fn hostile(suffix: &str) -> AgentText {
        let mut text = AgentText::from_bytes(HOSTILE);
        text.push(suffix);
        text
    }

    /// Panics if `text` holds a character a terminal would act on or that hides or reorders
    /// text.
    pub fn assert_inert(text: &str) {
        assert!(
            !text.chars().any(needs_escape),
            "a control or format character is printed raw: {text:?}"
        );
    }

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(super::time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::time(1_796_101_505_000), "2026-12-01 05:05:05 UTC");
    }
}
