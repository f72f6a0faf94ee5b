//! Names an agent chooses are shown escaped: a file name, an executable path and unix socket
//! names holding a newline, an escape sequence that clears the screen and a right-to-left
//! override reach `kya events`, `kya pending` (text and JSON) and the daemon's log only in
//! their escaped form, so an agent cannot forge what a human reads.
use std::{fs, path::Path, process::Output, time::Duration};

use kya_tests::{
    CODER_CGROUP, Daemon, EPERM, Fixture, Probe, bin, eventually, kya, op_exe_in_cgroup, scratch,
};

/// What the agent puts in its names: a newline, ESC [2J (clear the screen) and U+202E (show
/// what follows right to left).
const HOSTILE: &str = "a\nb\x1b[2J\u{202e}c";
/// How kya shows [`HOSTILE`].
const SHOWN: &str = r"a\nb\x1b[2J\u{202e}c";
/// Where the hostile file is: a dotenv file (`.env.*`), protected by its name, so that the
/// refusal names the file itself rather than a configured path.
const FILES: &str = "/srv/kya-hostile";
/// Where the hostile socket is bound (short: a socket path has at most 107 bytes).
const SOCKETS: &str = "/tmp/kya-hostile-sockets";

/// Panics if `text` holds, other than its line breaks, a character a terminal acts on (C0 or
/// C1 controls, DEL) or one that reorders or hides text (bidi and zero-width controls).
fn assert_inert(what: &str, text: &str) {
    let raw: Vec<char> = text
        .chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect();
    assert!(raw.is_empty(), "{what} prints {raw:?} raw:\n{text}");
}

fn stdout(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap_or_else(|_| panic!("{what}: not UTF-8"))
}

/// The line of `text` that contains `needle`, or a panic that shows `text`.
fn line_with<'a>(text: &'a str, needle: &str, what: &str) -> &'a str {
    text.lines()
        .find(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("{what} shows no `{needle}`:\n{text}"))
}

#[test]
fn hostile_names_are_shown_escaped_in_events_pending_and_the_log() {
    let fixture = Fixture::new();
    let dir = scratch("escaping");
    for tree in [FILES, SOCKETS] {
        let _ = fs::remove_dir_all(tree);
        fs::create_dir_all(tree).unwrap();
    }
    let secret = Path::new(FILES).join(format!(".env.{HOSTILE}"));
    fs::write(&secret, "secret\n").unwrap();
    // The agent runs a program whose own path is hostile.
    let exe = dir.join(format!("probe-{HOSTILE}"));
    fs::copy(bin("kya-probe"), &exe).unwrap();
    let socket = format!("{SOCKETS}/{HOSTILE}.sock");
    let abstract_name = format!("@kya-{HOSTILE}");
    let log = dir.join("kya-agent.log");
    let _daemon = Daemon::start_fresh_logging_to(&fixture.config_with_alice_approving(), &log);
    // Untagged servers, on no allowlist of coder's.
    let _servers = [
        Probe::plain(&["unix-deputy", &socket, "stream"]),
        Probe::plain(&["unix-deputy", &abstract_name, "stream"]),
    ];

    let agent = |args: &[&str]| op_exe_in_cgroup(&exe, CODER_CGROUP, args);
    assert_eq!(
        agent(&["read", secret.to_str().unwrap()]),
        Err(EPERM),
        "the agent reads a protected file with a hostile name"
    );
    for address in [&socket, &abstract_name] {
        assert_eq!(
            agent(&["unix-connect", address, "stream"]),
            Err(EPERM),
            "the agent connects to {address:?}"
        );
    }
    // Untagged, the same name reads: the refusal above is the agent's alone.
    let read = fs::read_to_string(&secret);
    assert!(read.is_ok(), "root reads {secret:?}: {read:?}");

    let file_shown = format!(".env.{SHOWN}");
    let socket_shown = format!("{SOCKETS}/{SHOWN}.sock");
    let abstract_shown = format!("@kya-{SHOWN}");
    let mut events = String::new();
    let all_shown = eventually(Duration::from_secs(10), || {
        events = stdout(&kya(&["events"]), "kya events");
        [&file_shown, &socket_shown, &abstract_shown]
            .iter()
            .all(|shown| events.contains(shown.as_str()))
    });
    assert!(
        all_shown,
        "kya events names the file and both sockets escaped:\n{events}"
    );
    assert_inert("kya events", &events);
    let file_event = line_with(&events, &file_shown, "kya events");
    assert!(
        file_event.contains(r"probe-a\nb\x1b[2J") && file_event.contains("agent=coder"),
        "the refusal's line names the agent and its hostile executable: {file_event}"
    );
    assert!(line_with(&events, &socket_shown, "kya events").contains("unix"));

    let json = stdout(&kya(&["events", "--json"]), "kya events --json");
    assert_inert("kya events --json", &json);
    let records: Vec<serde_json::Value> = json
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert!(
        records
            .iter()
            .any(|record| record["name"] == file_shown.as_str()),
        "kya events --json carries the escaped name:\n{json}"
    );
    for shown in [&socket_shown, &abstract_shown] {
        assert!(
            records
                .iter()
                .any(|record| record["socket"] == shown.as_str()),
            "kya events --json carries the socket {shown}:\n{json}"
        );
    }

    let pending = stdout(&kya(&["pending"]), "kya pending");
    assert_inert("kya pending", &pending);
    for resource in [
        format!("file {file_shown} ["),
        format!("unix {socket_shown} ["),
        format!("unix {abstract_shown} [abstract"),
    ] {
        let request = line_with(&pending, &resource, "kya pending");
        assert!(request.contains("agent=coder"), "{request}");
    }
    let pending_json = stdout(&kya(&["pending", "--json"]), "kya pending --json");
    assert_inert("kya pending --json", &pending_json);
    let requests: Vec<serde_json::Value> = serde_json::from_str(&pending_json).expect("JSON");
    assert!(
        requests.iter().any(|request| request["resource"]
            .as_str()
            .is_some_and(|resource| resource.starts_with(&format!("file {file_shown} [")))),
        "kya pending --json carries the escaped path:\n{pending_json}"
    );
    assert_log_escaped(&log, &file_shown, &socket_shown);
}

/// The daemon's log names the refused file and socket escaped, each refusal on one line.
fn assert_log_escaped(log: &Path, file_shown: &str, socket_shown: &str) {
    let log = fs::read_to_string(log).expect("the daemon's log");
    assert_inert("the daemon's log", &log);
    let denied = line_with(&log, &format!("name={file_shown}"), "the daemon's log");
    assert!(
        denied.contains("denied") && denied.contains(r"probe-a\nb\x1b[2J"),
        "one log line holds the whole refusal: {denied}"
    );
    line_with(&log, &format!("socket={socket_shown}"), "the daemon's log");
}
