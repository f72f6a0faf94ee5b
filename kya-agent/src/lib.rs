//! kya's user space: configuration, the kernel loader, tagging, the control socket and metrics.
pub mod accounts;
pub mod approvals;
pub mod audit;
pub mod btf;
pub mod cli_docs;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dates;
pub mod events;
pub mod files;
pub mod grants;
pub mod identity;
pub mod kernel;
pub mod metrics;
pub mod network;
pub mod paths;
pub mod policy;
pub mod procfs;
pub mod tagging;
pub mod text;

/// Formats an error with all its sources on one line: `outer: inner: root cause`.
#[must_use]
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Lets a command-line tool end quietly, as other Unix tools do, when the reader of its output
/// goes away (`kya events | head`): Rust ignores SIGPIPE, which turns the next `println!` into a
/// panic. Only for commands that print; the daemon keeps ignoring it, since a client that hangs
/// up must never end it.
pub fn end_quietly_on_closed_output() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: called first thing in `main`, before any other thread exists; the default
    // disposition installs no handler code.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}
