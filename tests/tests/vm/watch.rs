//! `kya watch`, end to end: an agent is refused, the request appears in the watch at a real
//! pseudo-terminal, the human answers there (once, deny), and the kernel does exactly that;
//! `--json` follows requests as lines; an agent process cannot watch.
use std::{
    fs,
    io::{BufRead as _, BufReader},
    os::unix::process::CommandExt as _,
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use kya_tests::{Daemon, EPERM, Fixture, Terminal, bin, eventually, kya, kya_as, op_exe};
use serde_json::Value;

const SECRET: &str = "/home/alice/.aws/credentials";
const ALICE: u32 = 1000;
/// How long the watch may take to show what happened (the VM is emulated).
const SHOWN: Duration = Duration::from_secs(20);

fn plant() {
    fs::create_dir_all(Path::new(SECRET).parent().unwrap()).unwrap();
    fs::write(SECRET, "secret\n").unwrap();
}

fn coder_read(fixture: &Fixture) -> Result<String, i32> {
    op_exe(&fixture.coder_exe, &["read", SECRET])
}

fn pending() -> Vec<Value> {
    let out = kya(&["pending", "--json"]);
    assert!(out.status.success(), "kya pending failed");
    serde_json::from_slice(&out.stdout).expect("kya pending --json")
}

/// The id of the pending request for the secret file, waiting for it to appear.
fn secret_request() -> String {
    let mut found = None;
    assert!(
        eventually(SHOWN, || {
            found = pending().into_iter().find(|request| {
                request["kind"] == "file"
                    && request["resource"]
                        .as_str()
                        .is_some_and(|resource| resource.contains(".aws/credentials"))
            });
            found.is_some()
        }),
        "no pending request for {SECRET}: {:?}",
        pending()
    );
    found.unwrap()["id"].as_str().unwrap().to_owned()
}

/// `kya watch` as alice (coder's approver) at a terminal.
fn watch_at_terminal() -> Terminal {
    let mut command = Command::new(bin("kya"));
    command.arg("watch").uid(ALICE).gid(ALICE).current_dir("/");
    Terminal::spawn(command)
}

#[test]
fn watch_answers_once_deny_and_custom_at_a_terminal_and_the_kernel_does_exactly_that() {
    let fixture = Fixture::new();
    plant();
    let _daemon = Daemon::start_clean(&fixture.config_with_alice_approving());
    let mut watch = watch_at_terminal();
    watch.expect("pending requests appear here", SHOWN);

    // Refused; the request shows up in the watch without anyone asking for it.
    assert_eq!(coder_read(&fixture), Err(EPERM));
    let id = secret_request();
    let shown = watch.expect("[o]nce", SHOWN);
    assert!(
        shown.contains(&format!("{id}  agent coder  file {SECRET}")),
        "the request, its agent and its file: {shown:?}"
    );
    assert!(
        shown.contains("refused file-open once since") && shown.contains("why: "),
        "how often, since when and why: {shown:?}"
    );

    // "once": the next attempt succeeds, the one after is refused again.
    watch.type_line("o");
    let granted = watch.expect("(approved by alice)", SHOWN);
    assert!(
        granted.contains("granted: agent coder may") && granted.contains("once, before"),
        "{granted:?}"
    );
    assert!(
        pending().iter().all(|request| request["id"] != id.as_str()),
        "the answered request left the list"
    );
    assert!(
        coder_read(&fixture).is_ok(),
        "the use approved in the watch must succeed"
    );
    assert_eq!(
        coder_read(&fixture),
        Err(EPERM),
        "a single use approved in the watch is spent"
    );

    // That refusal is a new request: "deny" refuses it, nothing is granted.
    let again = secret_request();
    assert_ne!(again, id);
    watch.expect(&format!("{again}  agent coder"), SHOWN);
    watch.expect("[o]nce", SHOWN);
    watch.type_line("d");
    watch.expect(&format!("{again} refused"), SHOWN);
    assert!(
        pending()
            .iter()
            .all(|request| request["id"] != again.as_str()),
        "the refused request left the list: {:?}",
        pending()
    );
    let grants = kya(&["grants", "--json"]);
    let grants: Vec<Value> = serde_json::from_slice(&grants.stdout).expect("kya grants --json");
    assert!(grants.is_empty(), "a refusal grants nothing: {grants:?}");
    assert_eq!(coder_read(&fixture), Err(EPERM));

    // Answered elsewhere: it leaves the watch, which asks no more about it.
    let third = secret_request();
    watch.expect(&format!("{third}  agent coder"), SHOWN);
    watch.expect("[o]nce", SHOWN);
    let elsewhere = kya_as(ALICE, &["deny", &third]);
    assert!(elsewhere.status.success(), "kya deny elsewhere");
    watch.expect(&format!("{third} left the list: answered elsewhere"), SHOWN);

    // "custom": a duration typed wrong is asked again; a timed grant lets every attempt through.
    assert_eq!(coder_read(&fixture), Err(EPERM));
    let fourth = secret_request();
    watch.expect(&format!("{fourth}  agent coder"), SHOWN);
    watch.expect("[o]nce", SHOWN);
    watch.type_line("c");
    watch.expect("for how long", SHOWN);
    watch.type_line("2 weeks");
    watch.expect("has no known unit", SHOWN);
    watch.type_line("30m");
    let timed = watch.expect("(approved by alice)", SHOWN);
    assert!(
        timed.contains("granted: agent coder may") && timed.contains(" until "),
        "{timed:?}"
    );
    assert!(
        coder_read(&fixture).is_ok(),
        "a timed grant lets it through"
    );
    assert!(coder_read(&fixture).is_ok(), "again, while it lasts");

    watch.type_line("q");
    assert!(watch.wait(SHOWN).success(), "kya watch ends when asked to");
}

/// Lines of `kya watch --json` as alice (its output a pipe), as they come.
fn watch_json() -> (std::process::Child, mpsc::Receiver<Value>) {
    let mut child = Command::new(bin("kya"))
        .args(["watch", "--json"])
        .uid(ALICE)
        .gid(ALICE)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start kya watch --json");
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let value = serde_json::from_str(&line)
                .unwrap_or_else(|error| panic!("not a JSON line ({error}): {line}"));
            if lines.send(value).is_err() {
                return;
            }
        }
    });
    (child, received)
}

/// The next line about request `id` (or, with `None`, about the secret file).
fn next_line(lines: &mpsc::Receiver<Value>, id: Option<&str>) -> Value {
    loop {
        let line = lines
            .recv_timeout(SHOWN)
            .unwrap_or_else(|_| panic!("no JSON line about {id:?} within {SHOWN:?}"));
        let about = match id {
            Some(id) => line["id"] == id,
            None => line["resource"]
                .as_str()
                .is_some_and(|resource| resource.contains(".aws/credentials")),
        };
        if about {
            return line;
        }
    }
}

#[test]
fn watch_json_prints_a_line_per_new_changed_and_ended_request() {
    let fixture = Fixture::new();
    plant();
    let _daemon = Daemon::start_clean(&fixture.config_with_alice_approving());
    let (mut child, lines) = watch_json();

    assert_eq!(coder_read(&fixture), Err(EPERM));
    let new = next_line(&lines, None);
    assert_eq!(new["event"], "new", "{new}");
    assert_eq!(new["agent"], "coder", "{new}");
    assert_eq!(new["kind"], "file", "{new}");
    assert_eq!(new["operation"], "file-open", "{new}");
    assert_eq!(new["count"], 1, "{new}");
    assert!(
        new["why"].as_str().is_some_and(|why| !why.is_empty()),
        "{new}"
    );
    assert!(
        new["first_ms"].as_u64().is_some() && new["pid"].as_u64().is_some(),
        "{new}"
    );
    let id = new["id"].as_str().unwrap().to_owned();

    assert_eq!(coder_read(&fixture), Err(EPERM));
    let changed = next_line(&lines, Some(&id));
    assert_eq!(changed["event"], "changed", "{changed}");
    assert_eq!(changed["count"], 2, "{changed}");

    // Approved elsewhere: the watch says it ended.
    let approve = kya_as(ALICE, &["approve", &id, "--once"]);
    assert!(approve.status.success(), "kya approve elsewhere");
    let ended = next_line(&lines, Some(&id));
    assert_eq!(ended["event"], "ended", "{ended}");
    assert_eq!(ended["agent"], "coder", "{ended}");

    assert!(
        child.try_wait().unwrap().is_none(),
        "the watch keeps following"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn watch_refuses_an_agent_process() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config_with_alice_approving());
    let kya_bin = bin("kya");
    let out = kya(&[
        "run",
        "--agent",
        "coder",
        "--",
        kya_bin.to_str().unwrap(),
        "watch",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a tagged kya watch must not run");
    assert!(
        stderr.contains("kya watch:")
            && stderr.contains("agent processes cannot use the control socket"),
        "a tagged kya watch says why it cannot run: {stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "it printed nothing: {:?}",
        out.stdout
    );
}
