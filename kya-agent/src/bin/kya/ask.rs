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

pub use kya_agent::dates::utc_time as time;

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
}
