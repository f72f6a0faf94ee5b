//! kya protects itself: an agent, even running as root, cannot signal kya-agent (or any process
//! outside its agent), cannot use bpf(2) to reach kya's programs and maps, cannot shed its tag
//! by leaving its cgroup, and cannot reach kya's control socket, state or config.
use kya_tests::{Daemon, EPERM, Fixture, Probe, events, eventually, op, op_exe};

#[test]
fn an_agent_cannot_signal_the_daemon_or_processes_outside_its_agent() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture.config);
    let daemon_pid = daemon.pid().to_string();
    for signal in ["19", "15", "9"] {
        // SIGSTOP, SIGTERM, SIGKILL
        assert_eq!(
            op(Some("coder"), &["signal", &daemon_pid, signal]),
            Err(EPERM),
            "signal {signal} to kya-agent"
        );
    }
    let stat = std::fs::read_to_string(format!("/proc/{daemon_pid}/stat")).unwrap();
    let state = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .next()
        .unwrap();
    assert_ne!(state, "T", "kya-agent must not be stopped");
    let _ = daemon.ps(); // and it still answers
    let bystander = Probe::plain(&["self"]);
    let bystander_pid = bystander.pid().to_string();
    assert_eq!(
        op(Some("coder"), &["signal", &bystander_pid, "15"]),
        Err(EPERM),
        "an untagged process"
    );
    let other_agent = Probe::start(&fixture.ops_exe, &["self"]);
    assert_eq!(
        op_exe(
            &fixture.coder_exe,
            &["signal", &other_agent.pid().to_string(), "15"]
        ),
        Err(EPERM),
        "another agent's process"
    );
    // Its own processes, and existence checks, are fine; untagged processes are unaffected.
    let own = Probe::start(&fixture.coder_exe, &["self"]);
    assert!(
        op_exe(
            &fixture.coder_exe,
            &["signal", &own.pid().to_string(), "10"]
        )
        .is_ok()
    );
    assert!(op(Some("coder"), &["signal", &daemon_pid, "0"]).is_ok());
    assert!(op(None, &["signal", &bystander_pid, "0"]).is_ok());
    assert!(eventually(std::time::Duration::from_secs(10), || {
        events()
            .iter()
            .any(|event| event["kind"] == "signal" && event["target_pid"] == daemon.pid())
    }));
}

#[test]
fn an_agent_cannot_use_bpf_or_shed_its_tag() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture.config);
    assert_eq!(op(Some("coder"), &["bpf-map-create"]), Err(EPERM));
    assert!(
        op(None, &["bpf-map-create"]).is_ok(),
        "root outside agents may"
    );
    assert!(eventually(std::time::Duration::from_secs(10), || {
        events().iter().any(|event| event["kind"] == "bpf")
    }));
    // Leaving every agent cgroup for the root cgroup keeps the tag (and so every rule).
    let escaped = Probe::as_agent("coder", &["cgroup", "/"]);
    daemon.assert_tagged(escaped.pid(), "coder", "run");
}
