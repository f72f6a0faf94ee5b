//! Human-approved grants, end to end against the real kernel: a denial becomes a pending
//! request, a named human approves it, the kernel lets exactly that through for exactly as long
//! as approved (even with the daemon frozen), and every decision is durable and audited.
use std::{
    fs,
    net::TcpListener,
    path::Path,
    process::Output,
    thread,
    time::{Duration, Instant},
};

use kya_tests::{
    Daemon, EPERM, Fixture, STATE_DIR, audit_trail, eventually, kya, kya_as, op, op_exe,
    require_vm, scratch,
};
use nix::sys::signal::Signal;
use serde_json::Value;

pub(crate) const SECRET: &str = "/home/alice/.aws/credentials";
const README: &str = "/srv/app/readme.txt";
pub(crate) const ALICE: u32 = 1000;
const BOB: u32 = 1002;
/// A peer on no allowlist, served by a listener in the test.
const PEER: &str = "127.0.0.4:9090";

pub(crate) fn plant() {
    for path in [SECRET, README] {
        fs::create_dir_all(Path::new(path).parent().unwrap()).unwrap();
        fs::write(path, "secret\n").unwrap();
    }
}

pub(crate) fn ok(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn refused(output: &Output, what: &str, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{what} must be refused");
    assert!(
        stderr.contains(expected),
        "{what}: expected `{expected}` in: {stderr}"
    );
}

fn json_list(args: &[&str]) -> Vec<Value> {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ok(&kya(&all), &args.join(" "))).expect("JSON")
}

pub(crate) fn pending() -> Vec<Value> {
    json_list(&["pending"])
}

/// Whether no pending request has the id `id`.
fn no_pending(id: &str) -> bool {
    pending().iter().all(|request| request["id"] != id)
}

pub(crate) fn grants() -> Vec<Value> {
    json_list(&["grants"])
}

/// The id of the one pending request for `kind` (`file`, `connect`), waiting for it to appear.
pub(crate) fn pending_id(kind: &str) -> String {
    let mut found = None;
    assert!(
        eventually(Duration::from_secs(10), || {
            found = pending()
                .into_iter()
                .find(|request| request["kind"] == kind);
            found.is_some()
        }),
        "no pending {kind} request; pending: {:?}",
        pending()
    );
    found.unwrap()["id"].as_str().unwrap().to_owned()
}

/// `kya grant ...` as root; returns the grant id.
fn grant(args: &[&str]) -> String {
    let mut all = vec!["grant", "--agent", "coder"];
    all.extend_from_slice(args);
    let out = ok(&kya(&all), "kya grant");
    out.split_whitespace().next().unwrap().to_owned()
}

/// The events of this test's audit records.
fn audit_events() -> Vec<String> {
    audit_trail()
        .iter()
        .map(|record| record["event"].as_str().unwrap().to_owned())
        .collect()
}

fn coder_read(fixture: &Fixture) -> Result<String, i32> {
    op_exe(&fixture.coder_exe, &["read", SECRET])
}

#[test]
fn a_file_request_is_approved_once_by_a_listed_human_and_used_exactly_once() {
    let fixture = Fixture::new();
    plant();
    let _daemon = Daemon::start_clean(&fixture.config_with_alice_approving());

    // Denied, and repeats fold into one pending request.
    assert_eq!(coder_read(&fixture), Err(EPERM));
    assert_eq!(coder_read(&fixture), Err(EPERM));
    let id = pending_id("file");
    assert!(eventually(Duration::from_secs(5), || {
        pending()[0]["count"].as_u64() == Some(2)
    }));
    assert_eq!(pending().len(), 1, "repeats fold: {:?}", pending());
    assert_eq!(pending()[0]["agent"], "coder");
    assert!(
        pending()[0]["resource"]
            .as_str()
            .unwrap()
            .contains(".aws/credentials")
    );

    // Who may approve: not bob (unlisted), not a tagged process (not even the socket).
    refused(
        &kya_as(BOB, &["approve", &id, "--once"]),
        "approval by bob",
        "may not decide for agent `coder`",
    );
    let kya_bin = kya_tests::bin("kya");
    refused(
        &kya(&[
            "run",
            "--agent",
            "coder",
            "--",
            kya_bin.to_str().unwrap(),
            "approve",
            &id,
            "--once",
        ]),
        "approval by an agent process",
        "agent processes cannot use the control socket",
    );
    assert_eq!(
        coder_read(&fixture),
        Err(EPERM),
        "refused approvals grant nothing"
    );

    // alice approves one use; the next attempt succeeds, the one after is refused.
    let out = ok(
        &kya_as(
            ALICE,
            &["approve", &id, "--once", "--reason", "rotate keys"],
        ),
        "approval by alice",
    );
    assert!(out.contains("approved by alice"), "{out}");
    // (The agent's refused connect to the control socket is a request of its own.)
    assert!(
        no_pending(&id),
        "the approved request left: {:?}",
        pending()
    );
    let listed = grants();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["approver"], "alice");
    assert_eq!(listed[0]["approver_uid"], ALICE);
    assert_eq!(listed[0]["reason"], "rotate keys");
    assert_eq!(listed[0]["uses_left"], 1);
    assert!(
        coder_read(&fixture).is_ok(),
        "the approved use must succeed"
    );
    assert_eq!(
        coder_read(&fixture),
        Err(EPERM),
        "a single-use grant is spent"
    );
    assert!(eventually(Duration::from_secs(5), || grants().is_empty()));

    // A request can be refused: it leaves the pending list, nothing is granted.
    let again = pending_id("file");
    ok(&kya_as(ALICE, &["deny", &again]), "kya deny");
    assert!(
        no_pending(&again),
        "the denied request left: {:?}",
        pending()
    );
    assert_eq!(coder_read(&fixture), Err(EPERM));

    // Single use under concurrency: eight threads race, exactly one gets through.
    grant(&["--file", SECRET, "--once"]);
    assert_eq!(
        op_exe(&fixture.coder_exe, &["race-read", SECRET, "8"]),
        Ok("1 of 8".to_owned())
    );

    let trail = audit_events();
    for event in ["request", "approve", "grant_used", "deny", "grant"] {
        assert!(trail.iter().any(|e| e == event), "no {event} in {trail:?}");
    }
    // Untagged processes are untouched throughout.
    assert!(op(None, &["read", SECRET]).is_ok());
}

#[test]
fn timed_grants_end_in_the_kernel_with_the_daemon_frozen_and_revocation_is_immediate() {
    let fixture = Fixture::new();
    plant();
    let daemon = Daemon::start_clean(&fixture.config_with_alice_approving());
    let _listener = TcpListener::bind(PEER).unwrap();
    let (addr, port) = PEER.split_once(':').unwrap();

    // A file and a peer for 8 seconds; then the daemon is frozen before they end.
    let granted_at = Instant::now();
    grant(&["--file", SECRET, "--for", "8s", "--reason", "debug"]);
    grant(&["--connect", PEER, "--for", "8s"]);
    // Both grants began by now: each ends at most 8 s after this.
    let both_granted = Instant::now();
    assert!(coder_read(&fixture).is_ok());
    assert!(op_exe(&fixture.coder_exe, &["tcp-connect-send", addr, port]).is_ok());
    daemon.signal(Signal::SIGSTOP);
    assert!(
        granted_at.elapsed() < Duration::from_secs(8),
        "the test was too slow to use the grants before they ended"
    );
    thread::sleep(Duration::from_secs(9).saturating_sub(both_granted.elapsed()));
    let file_after = coder_read(&fixture);
    let peer_after = op_exe(&fixture.coder_exe, &["tcp-connect", addr, port]);
    daemon.signal(Signal::SIGCONT);
    assert_eq!(
        file_after,
        Err(EPERM),
        "file grant must end with the daemon frozen"
    );
    assert_eq!(
        peer_after,
        Err(EPERM),
        "peer grant must end with the daemon frozen"
    );
    assert!(eventually(Duration::from_secs(5), || grants().is_empty()));
    assert!(audit_events().iter().filter(|e| *e == "expire").count() >= 2);

    // Revoking one grant takes effect at once.
    let file_grant = grant(&["--file", SECRET, "--for", "10m"]);
    assert!(coder_read(&fixture).is_ok());
    ok(&kya(&["revoke", &file_grant]), "kya revoke");
    assert_eq!(coder_read(&fixture), Err(EPERM));

    // The human left: everything alice approved is voided in one step.
    grant(&["--file", SECRET, "--for", "10m"]);
    let _ = op_exe(&fixture.coder_exe, &["tcp-connect", addr, port]);
    let request = pending_id("connect");
    ok(
        &kya_as(ALICE, &["approve", &request, "--for", "10m"]),
        "alice approves",
    );
    assert!(op_exe(&fixture.coder_exe, &["tcp-connect", addr, port]).is_ok());
    refused(
        &kya_as(BOB, &["revoke", "--approver", "alice"]),
        "bob voiding alice's grants",
        "only root",
    );
    let out = ok(
        &kya(&["revoke", "--approver", "alice"]),
        "revoke --approver",
    );
    assert_eq!(grants().len(), 1, "only alice's grant ends: {out}");
    assert_eq!(
        op_exe(&fixture.coder_exe, &["tcp-connect", addr, port]),
        Err(EPERM)
    );
    ok(&kya(&["revoke", "--agent", "coder"]), "revoke --agent");
    assert!(grants().is_empty());
    assert_eq!(coder_read(&fixture), Err(EPERM));
}

#[test]
fn a_connection_grant_covers_one_connection_and_its_sends() {
    let fixture = Fixture::new();
    plant();
    let _daemon = Daemon::start_clean(&fixture.config_with_alice_approving());
    let _listener = TcpListener::bind(PEER).unwrap();
    let (addr, port) = PEER.split_once(':').unwrap();

    assert_eq!(op(Some("coder"), &["tcp-connect", addr, port]), Err(EPERM));
    let id = pending_id("connect");
    assert!(pending()[0]["resource"].as_str().unwrap().contains(PEER));
    ok(&kya_as(ALICE, &["approve", &id, "--once"]), "approve");
    assert!(
        op(Some("coder"), &["tcp-connect-send", addr, port]).is_ok(),
        "the granted connection and its sends must succeed"
    );
    assert_eq!(op(Some("coder"), &["tcp-connect", addr, port]), Err(EPERM));

    grant(&["--connect", PEER, "--once"]);
    assert_eq!(
        op(Some("coder"), &["race-connect", addr, port, "8"]),
        Ok("1 of 8".to_owned())
    );
    // A datagram is one use too.
    grant(&["--connect", "127.0.0.4:9091", "--once"]);
    assert!(op(Some("coder"), &["udp-sendto", addr, "9091"]).is_ok());
    assert_eq!(op(Some("coder"), &["udp-sendto", addr, "9091"]), Err(EPERM));
    // Other agents get nothing from coder's grants.
    grant(&["--connect", PEER, "--for", "1m"]);
    assert_eq!(op(Some("ops"), &["tcp-connect", addr, port]), Err(EPERM));
}

#[test]
fn bad_requests_are_refused_clearly_and_change_nothing() {
    let fixture = Fixture::new();
    plant();
    let _daemon = Daemon::start_clean(&fixture.config_with_alice_approving());
    let before = grants();
    for (args, expected) in [
        (
            &["approve", "r999", "--once"][..],
            "no pending request r999",
        ),
        (&["approve", "banana", "--once"], "not a request id"),
        (&["deny", "r42"], "no pending request r42"),
        (&["revoke", "g77"], "no grant g77"),
        (
            &["grant", "--agent", "coder", "--file", SECRET, "--for", "0s"],
            "zero",
        ),
        (
            &[
                "grant", "--agent", "coder", "--file", SECRET, "--for", "48h",
            ],
            "longer than",
        ),
        (
            &[
                "grant", "--agent", "coder", "--file", SECRET, "--for", "soon",
            ],
            "not understood",
        ),
        (
            &["grant", "--agent", "nobody", "--file", SECRET, "--once"],
            "unknown agent `nobody`",
        ),
        (
            &["grant", "--agent", "coder", "--file", README, "--once"],
            "needs no grant",
        ),
        (
            &["grant", "--agent", "coder", "--file", "/no/such", "--once"],
            "/no/such",
        ),
        (
            &[
                "grant",
                "--agent",
                "coder",
                "--connect",
                "127.0.0.4",
                "--once",
            ],
            "no port",
        ),
        (
            &[
                "grant",
                "--agent",
                "coder",
                "--connect",
                "127.0.0.4:0",
                "--once",
            ],
            "not a port",
        ),
        (&["revoke", "--agent", "nobody"], "unknown agent"),
    ] {
        refused(&kya(args), &args.join(" "), expected);
    }
    // Malformed and oversized requests on the socket itself.
    for request in [b"{\"request\":\"approve\"}\n".to_vec(), vec![b'x'; 70_000]] {
        let answer = raw_request(&request);
        assert!(answer.contains("\"error\""), "{answer}");
    }
    assert_eq!(grants(), before, "bad input changed nothing");
    assert!(pending().is_empty());
    // Agents cannot read or rewrite kya's own state and config.
    let trail = format!("{STATE_DIR}/audit.jsonl");
    let config_file = format!("{}/kya.toml", kya_tests::SCRATCH);
    for path in [trail.as_str(), config_file.as_str()] {
        assert_eq!(
            op_exe(&fixture.coder_exe, &["read", path]),
            Err(EPERM),
            "{path}"
        );
        assert!(
            op(None, &["read", path]).is_ok(),
            "{path} is readable by root"
        );
    }
}

fn raw_request(bytes: &[u8]) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::os::unix::net::UnixStream::connect(kya_tests::SOCKET).unwrap();
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[test]
fn grants_and_requests_survive_a_killed_daemon_and_the_audit_trail_catches_tampering() {
    require_vm();
    let fixture = Fixture::new();
    plant();
    let config = fixture.config_with_alice_approving();
    let daemon = Daemon::start_clean(&config);
    assert_eq!(coder_read(&fixture), Err(EPERM));
    let requested = pending_id("file");
    let granted = grant(&["--file", SECRET, "--for", "30m", "--reason", "on call"]);
    daemon.kill();

    let restarted = Daemon::restart(&config);
    let listed = grants();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], granted.as_str());
    assert_eq!(listed[0]["reason"], "on call");
    assert!(
        coder_read(&fixture).is_ok(),
        "the grant is back in the kernel"
    );
    assert_eq!(
        pending_id("file"),
        requested,
        "the request is still pending"
    );
    drop(restarted);

    // Tampering is caught: checked on a copy, so the daemon keeps its own trail intact.
    let copy = scratch("audit_copy");
    for entry in fs::read_dir(STATE_DIR).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
    }
    let copy_dir = copy.to_str().unwrap();
    let verify = || kya(&["audit", "verify", "--state-dir", copy_dir]);
    ok(&verify(), "audit verify of an intact trail");
    let trail = copy.join("audit.jsonl");
    let original = fs::read_to_string(&trail).unwrap();
    let edited = original.replacen("on call", "on kall", 1);
    assert_ne!(edited, original);
    fs::write(&trail, &edited).unwrap();
    assert!(
        !verify().status.success(),
        "an edited record must be caught"
    );
    let mut lines: Vec<&str> = original.lines().collect();
    lines.pop();
    fs::write(&trail, lines.join("\n") + "\n").unwrap();
    assert!(
        !verify().status.success(),
        "a removed last record must be caught"
    );
}
