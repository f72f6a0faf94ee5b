//! Config reload: `kya reload` and SIGHUP put an edited config in force as a whole (new
//! protections, new allowlists, new agents and the processes they match), and a config with
//! errors is refused with its errors while the policy in force stays exactly as it was.
use std::{
    fs,
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream},
    time::Duration,
};

use kya_tests::{
    Daemon, EPERM, Fixture, OpResult, Probe, config_path, eventually, kya, kya_as, op,
};
use nix::sys::signal::Signal;

/// The peer and the file whose treatment the reloads switch.
const PEER: (&str, &str) = ("127.0.0.6", "8080");
const SECRET_DIR: &str = "/srv/reload";
const SECRET: &str = "/srv/reload/secret.txt";

/// coder may reach `PEER` and read `SECRET`.
fn open_config(fixture: &Fixture) -> String {
    let (coder, ops) = split(fixture);
    format!(
        "{coder}[agents.network]\nallow = [\"{}:{}\"]\n\n[[agents]]\nname = \"ops\"{ops}",
        PEER.0, PEER.1
    )
}

/// coder may reach nothing and `SECRET_DIR` is protected from it; a new agent, `reviewer`,
/// is every process of uid 1002.
fn closed_config(fixture: &Fixture) -> String {
    let (coder, ops) = split(fixture);
    format!(
        "{coder}[agents.files]\nprotect = [\"{SECRET_DIR}/\"]\n\n[[agents]]\nname = \"ops\"{ops}\n\
         [[agents]]\nname = \"reviewer\"\nowner = \"alice\"\n[agents.match]\nuid = [1002]\n"
    )
}

fn split(fixture: &Fixture) -> (&str, &str) {
    fixture
        .config
        .split_once("[[agents]]\nname = \"ops\"")
        .expect("fixture has an ops agent")
}

fn connect() -> OpResult {
    op(Some("coder"), &["tcp-connect", PEER.0, PEER.1])
}

fn read_secret() -> OpResult {
    op(Some("coder"), &["read", SECRET])
}

fn assert_open() {
    assert!(
        connect().is_ok(),
        "coder must reach {PEER:?}: {:?}",
        connect()
    );
    assert!(
        read_secret().is_ok(),
        "coder must read {SECRET}: {:?}",
        read_secret()
    );
}

fn assert_closed() {
    assert_eq!(connect(), Err(EPERM), "coder must not reach {PEER:?}");
    assert_eq!(read_secret(), Err(EPERM), "coder must not read {SECRET}");
}

fn reload() -> std::process::Output {
    kya(&["reload"])
}

/// The body of `/metrics` (with the response's head).
pub(crate) fn metrics_body() -> String {
    let mut stream = TcpStream::connect("127.0.0.1:9464").expect("metrics endpoint");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: kya\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn a_reload_replaces_the_policy_and_a_bad_one_changes_nothing() {
    let fixture = Fixture::new();
    fs::create_dir_all(SECRET_DIR).unwrap();
    fs::write(SECRET, "reload-secret").unwrap();
    let _listener = TcpListener::bind(format!("{}:{}", PEER.0, PEER.1)).expect("listener");
    let daemon = Daemon::start(&open_config(&fixture));
    // A process of uid 1002, running before any rule names that uid.
    let reviewer = Probe::plain(&["setuid", "1002"]);
    daemon.assert_untagged(reviewer.pid());
    assert_open();

    fs::write(config_path(), closed_config(&fixture)).unwrap();
    let reloaded = reload();
    assert!(reloaded.status.success(), "{reloaded:?}");
    let said = String::from_utf8_lossy(&reloaded.stdout);
    assert!(
        said.contains("reloaded") && said.contains("3 agent(s)"),
        "{said}"
    );
    assert_closed();
    let tagged = daemon
        .tagged(reviewer.pid())
        .expect("the new agent's process is tagged");
    assert_eq!(tagged.agent, "reviewer");
    assert!(
        metrics_body().contains("kya_tagged_processes{agent=\"reviewer\"}"),
        "the new agent has its metrics"
    );

    // Errors: the reload is refused with them, and nothing changes. One config fails to
    // parse (a misspelt key), the other fails validation (an agent name).
    let misspelt =
        closed_config(&fixture).replace("[agents.files]\nprotect", "[agents.files]\nprotekt");
    let bad_name = format!(
        "{}\n[[agents]]\nname = \"Bad Name\"\nowner = \"alice\"\n",
        closed_config(&fixture)
    );
    for (bad, named) in [(&misspelt, "protekt"), (&bad_name, "Bad Name")] {
        fs::write(config_path(), bad).unwrap();
        let refused = reload();
        assert!(!refused.status.success(), "{refused:?}");
        let why = String::from_utf8_lossy(&refused.stderr);
        assert!(
            why.contains(&format!("{}:", config_path().display())),
            "names the file and line: {why}"
        );
        assert!(why.contains(named), "names the bad value: {why}");
        assert!(why.contains("unchanged"), "says the policy stays: {why}");
        assert_closed();
        assert_eq!(
            daemon
                .tagged(reviewer.pid())
                .map(|entry| entry.agent)
                .as_deref(),
            Some("reviewer")
        );
    }

    // A user who is not root may not reload, whatever the file says.
    fs::write(config_path(), open_config(&fixture)).unwrap();
    let not_root = kya_as(1000, &["reload"]);
    assert!(!not_root.status.success(), "{not_root:?}");
    assert!(String::from_utf8_lossy(&not_root.stderr).contains("may not reload"));
    assert_closed();

    // SIGHUP reloads too.
    daemon.signal(Signal::SIGHUP);
    assert!(
        eventually(Duration::from_secs(20), || connect().is_ok()),
        "SIGHUP put the open config in force"
    );
    assert_open();

    // A bad config on SIGHUP is refused; the daemon keeps running the policy it had.
    fs::write(config_path(), &misspelt).unwrap();
    daemon.signal(Signal::SIGHUP);
    std::thread::sleep(Duration::from_secs(3));
    let status = kya(&["status"]);
    assert!(status.status.success(), "the daemon still runs: {status:?}");
    assert_open();
    assert_eq!(
        op(Some("ops"), &["tcp-connect", PEER.0, PEER.1]),
        Err(EPERM)
    );
}
