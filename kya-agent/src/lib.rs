//! kya's user space: configuration, the kernel loader, tagging, the control socket and metrics.
pub mod audit;
pub mod btf;
pub mod config;
pub mod control;
pub mod daemon;
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
