//! Where the daemon's logs go: to the journal, with structured fields, when systemd connected
//! its stderr to the journal; to stderr otherwise. `KYA_LOG` sets the filter (default `info`).
use tracing_subscriber::{EnvFilter, layer::SubscriberExt as _, util::SubscriberInitExt as _};

pub fn init() {
    let filter = EnvFilter::try_from_env("KYA_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if stderr_is_the_journal()
        && let Ok(journald) = tracing_journald::layer()
    {
        tracing_subscriber::registry()
            .with(filter)
            .with(journald.with_syslog_identifier("kya-agent".to_owned()))
            .init();
        return;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .init();
}

/// systemd sets `JOURNAL_STREAM` to the device and inode of the journal stream it gave the
/// service; it counts only if stderr is still that stream (not redirected by a wrapper).
fn stderr_is_the_journal() -> bool {
    use std::os::{fd::AsFd as _, unix::fs::MetadataExt as _};
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|text| text.split_once(':')) else {
        return false;
    };
    let Ok(stderr) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = std::fs::File::from(stderr).metadata() else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}
