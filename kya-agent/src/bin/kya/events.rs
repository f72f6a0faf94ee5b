//! `kya events [--json] [--follow]`: what agents were refused, and grant activity (approvals,
//! uses, expiry, revocations), newest last.
use std::{path::Path, process::ExitCode, thread, time::Duration};

use kya_agent::{
    control::{
        client,
        protocol::{DenialRecord, Request, Response},
    },
    grants::resource::opened_as,
};

/// How often `--follow` asks for new events.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);

#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    /// Keep printing new events as they happen.
    #[arg(long)]
    follow: bool,
}

pub fn run(socket: &Path, args: &Args) -> ExitCode {
    let mut after = 0;
    loop {
        let events = match client::call(socket, &Request::Events { after }) {
            Ok(Response::Events { events }) => events,
            Ok(Response::Error { message }) => {
                eprintln!("kya events: {message}");
                return ExitCode::FAILURE;
            }
            Ok(other) => {
                eprintln!("kya events: unexpected answer from kya-agent: {other:?}");
                return ExitCode::FAILURE;
            }
            Err(error) => {
                eprintln!("kya events: {error}");
                return ExitCode::FAILURE;
            }
        };
        for event in &events {
            print_event(event, args.json);
            after = after.max(event.seq);
        }
        if !args.follow {
            return ExitCode::SUCCESS;
        }
        thread::sleep(FOLLOW_INTERVAL);
    }
}

fn print_event(event: &DenialRecord, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(event).expect("events serialize")
        );
        return;
    }
    if matches!(
        event.kind.as_str(),
        "approve" | "grant" | "deny" | "expire" | "revoke"
    ) {
        // A human's decision or a grant's end.
        println!(
            "#{} {} agent={}{}: {}",
            event.seq,
            event.kind,
            event.agent,
            event
                .grant
                .as_deref()
                .map_or_else(String::new, |grant| format!(" grant={grant}")),
            event.why
        );
        return;
    }
    let object = match (&event.path, &event.name, event.target_pid) {
        _ if event.peer.is_some() => format!(
            "{} {}{}",
            event.protocol.as_deref().unwrap_or("-"),
            event.peer.as_deref().unwrap_or("-"),
            event
                .host
                .as_deref()
                .map_or_else(String::new, |host| format!(" ({host})"))
        ),
        _ if event.socket.is_some() => unix_object(event),
        // A command line names its procfs file.
        (_, Some(name), Some(target)) => format!("process {target} {name}"),
        (_, None, Some(target)) => format!("process {target}"),
        (Some(path), name, None) => match opened_as(path, name.as_deref()) {
            Some(name) => format!("{path} (opened as `{name}`, another name of it)"),
            None => path.clone(),
        },
        (None, Some(name), None) => name.clone(),
        (None, None, None) => "-".to_owned(),
    };
    let identity = match (&event.dev, event.ino) {
        (Some(dev), Some(ino)) => format!(" [{dev} inode {ino}]"),
        _ => String::new(),
    };
    let outcome = event
        .grant
        .as_deref()
        .map_or_else(String::new, |grant| format!(" allowed-by={grant}"));
    println!(
        "#{} {}{outcome} agent={} pid={} exe={} {}{}: {}",
        event.seq,
        event.kind,
        event.agent,
        event.pid,
        event.exe.as_deref().unwrap_or("-"),
        object,
        identity,
        event.why
    );
}

/// A unix socket and its server: `socket /run/user/1000/bus server=812 (/usr/bin/dbus-daemon)`.
fn unix_object(event: &DenialRecord) -> String {
    let socket = event.socket.as_deref().unwrap_or("-");
    match (event.server_pid, &event.server_exe) {
        (Some(pid), Some(exe)) => format!("socket {socket} server={pid} ({exe})"),
        (Some(pid), None) => format!("socket {socket} server={pid}"),
        (None, _) => format!("socket {socket}"),
    }
}
