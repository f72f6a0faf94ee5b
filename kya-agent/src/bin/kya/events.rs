//! `kya events [--json] [--follow]`: what agents were refused, and grant activity (approvals,
//! uses, expiry, revocations), newest last.
use std::{path::Path, process::ExitCode, thread, time::Duration};

use kya_agent::{
    control::{
        client,
        protocol::{DenialRecord, Request, Response},
    },
    grants::resource::opened_as,
    text::or_dash,
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
    } else {
        println!("{}", line(event));
    }
}

/// One event as a line of text. Every name in it is an `AgentText`, shown escaped.
fn line(event: &DenialRecord) -> String {
    if matches!(
        event.kind.as_str(),
        "approve" | "grant" | "deny" | "expire" | "revoke" | "contain" | "release"
    ) {
        // A human's decision or a grant's end.
        return format!(
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
    }
    let object = match (&event.path, &event.name, event.target_pid) {
        _ if event.peer.is_some() => format!(
            "{} {}{}",
            event.protocol.as_deref().unwrap_or("-"),
            event.peer.as_deref().unwrap_or("-"),
            event
                .host
                .as_ref()
                .map_or_else(String::new, |host| format!(" ({host})"))
        ),
        _ if event.socket.is_some() => unix_object(event),
        // A command line names its procfs file.
        (_, Some(name), Some(target)) => format!("process {target} {name}"),
        (_, None, Some(target)) => format!("process {target}"),
        (Some(path), name, None) => match opened_as(path, name.as_ref()) {
            Some(name) => format!("{path} (opened as `{name}`, another name of it)"),
            None => path.to_string(),
        },
        (None, Some(name), None) => name.to_string(),
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
    format!(
        "#{} {}{outcome} agent={} pid={} exe={} {}{}: {}",
        event.seq,
        event.kind,
        event.agent,
        event.pid,
        or_dash(event.exe.as_ref()),
        object,
        identity,
        event.why
    )
}

/// A unix socket and its server: `socket /run/user/1000/bus server=812 (/usr/bin/dbus-daemon)`.
fn unix_object(event: &DenialRecord) -> String {
    let socket = or_dash(event.socket.as_ref());
    match (event.server_pid, &event.server_exe) {
        (Some(pid), Some(exe)) => format!("socket {socket} server={pid} ({exe})"),
        (Some(pid), None) => format!("socket {socket} server={pid}"),
        (None, _) => format!("socket {socket}"),
    }
}

#[cfg(test)]
mod tests {
    use kya_agent::text::AgentText;

    use super::*;
    use crate::ask::tests::{HOSTILE, SHOWN, assert_inert, hostile};

    fn record() -> DenialRecord {
        DenialRecord {
            seq: 7,
            time_ms: 0,
            kind: "file-open".to_owned(),
            agent: "coder".to_owned(),
            pid: 4_000,
            tid: 4_000,
            exe: Some(hostile("exe")),
            path: Some(hostile("path")),
            name: Some(hostile("name")),
            dev: Some("8:1".to_owned()),
            ino: Some(42),
            target_pid: None,
            peer: None,
            protocol: None,
            host: None,
            socket: None,
            server_pid: None,
            server_exe: None,
            why: AgentText::from_bytes([b"inside /srv (" as &[u8], HOSTILE, b")"].concat()),
            grant: None,
        }
    }

    #[test]
    fn a_file_event_shows_hostile_names_escaped() {
        let line = line(&record());
        assert_inert(&line);
        assert!(line.contains(&format!(" exe={SHOWN}exe ")), "{line}");
        assert!(
            line.contains(&format!(
                " {SHOWN}path (opened as `{SHOWN}name`, another name of it) [8:1 inode 42]: \
                 inside /srv ({SHOWN})"
            )),
            "{line}"
        );
    }

    #[test]
    fn peer_socket_and_activity_events_show_hostile_names_escaped() {
        let peer = DenialRecord {
            peer: Some("127.0.0.2:80".to_owned()),
            protocol: Some("tcp".to_owned()),
            host: Some(hostile("host")),
            ..record()
        };
        let shown = line(&peer);
        assert_inert(&shown);
        assert!(
            shown.contains(&format!("tcp 127.0.0.2:80 ({SHOWN}host)")),
            "{shown}"
        );
        let socket = DenialRecord {
            kind: "unix".to_owned(),
            socket: Some(hostile("sock")),
            server_pid: Some(1),
            server_exe: Some(hostile("server")),
            ..record()
        };
        let shown = line(&socket);
        assert_inert(&shown);
        assert!(
            shown.contains(&format!("socket {SHOWN}sock server=1 ({SHOWN}server)")),
            "{shown}"
        );
        let approve = DenialRecord {
            kind: "approve".to_owned(),
            grant: Some("g1".to_owned()),
            ..record()
        };
        assert_inert(&line(&approve));
    }

    #[test]
    fn json_events_hold_the_same_escaped_text_losslessly() {
        let json = serde_json::to_string(&record()).unwrap();
        assert_inert(&json);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let path = value["path"].as_str().unwrap();
        assert_inert(path);
        assert_eq!(path, format!("{SHOWN}path"));
        let back: DenialRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, record());
    }
}
