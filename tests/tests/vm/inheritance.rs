//! A tag passes to every descendant, whatever way it is created, and nothing sheds or changes it.
use std::os::unix::fs::PermissionsExt as _;

use kya_tests::{Daemon, Fixture, Probe, bin, kya, scratch};

/// Runs `scenario` as agent `coder` and checks every process it reports is tagged. Returns the
/// still running probe (and the daemon, which must outlive it).
fn assert_scenario_inherits(scenario: &[&str]) -> (Probe, Daemon) {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture.config);
    let probe = Probe::as_agent("coder", scenario);
    assert!(!probe.pids.is_empty(), "{scenario:?} reported no process");
    for &pid in &probe.pids {
        let entry = daemon.assert_tagged(pid, "coder", "run");
        if pid != probe.pid() {
            assert_eq!(entry.origin, "inherited", "pid {pid} in {scenario:?}");
        }
    }
    (probe, daemon)
}

#[test]
fn fork_inherits() {
    assert_scenario_inherits(&["fork"]);
}

#[test]
fn threads_inherit() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture.config);
    let probe = Probe::as_agent("coder", &["thread"]);
    let entry = daemon.assert_tagged(probe.pid(), "coder", "run");
    assert!(entry.threads >= 2, "both threads are tagged: {entry:?}");
}

#[test]
fn double_fork_inherits() {
    assert_scenario_inherits(&["double-fork"]);
}

#[test]
fn setsid_inherits() {
    assert_scenario_inherits(&["setsid"]);
}

#[test]
fn daemonizing_inherits() {
    assert_scenario_inherits(&["daemonize"]);
}

#[test]
fn new_namespaces_inherit() {
    assert_scenario_inherits(&["namespaces"]);
}

#[test]
fn exec_keeps_the_tag() {
    let probe = bin("kya-probe");
    assert_scenario_inherits(&["exec", probe.to_str().unwrap(), "fork"]);
}

#[test]
fn exec_of_a_setuid_binary_keeps_the_tag() {
    let dir = scratch("setuid_binary");
    let setuid_probe = dir.join("setuid-probe");
    std::fs::copy(bin("kya-probe"), &setuid_probe).expect("copy");
    std::fs::set_permissions(&setuid_probe, std::fs::Permissions::from_mode(0o4755))
        .expect("chmod u+s");
    // Drop to uid 1000, then execute a setuid-root program: euid becomes 0 again.
    let (probe, _daemon) = assert_scenario_inherits(&[
        "setuid-exec",
        "1000",
        setuid_probe.to_str().unwrap(),
        "self",
    ]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", probe.pid())).unwrap();
    let uids = status
        .lines()
        .find(|line| line.starts_with("Uid:"))
        .unwrap();
    assert!(
        uids.split_whitespace().nth(2) == Some("0"),
        "the setuid binary really ran with euid 0: {uids}"
    );
}

#[test]
fn executing_another_agents_file_does_not_change_the_agent() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture.config);
    let ops_exe = fixture.ops_exe.to_str().unwrap();
    let probe = Probe::as_agent("coder", &["exec", ops_exe, "self"]);
    daemon.assert_tagged(probe.pid(), "coder", "run");
    // Switching to the coder uid, or moving into coder's cgroup, keeps an ops process ops.
    let probe = Probe::start(&fixture.ops_exe, &["setuid", "1001"]);
    daemon.assert_tagged(probe.pid(), "ops", "exe");
    let probe = Probe::start(&fixture.ops_exe, &["cgroup", kya_tests::CODER_CGROUP]);
    daemon.assert_tagged(probe.pid(), "ops", "exe");
}

#[test]
fn a_tagged_process_cannot_use_kya_run_to_change_agent() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    let kya_bin = bin("kya");
    let output = kya(&[
        "run",
        "--agent",
        "coder",
        "--",
        kya_bin.to_str().unwrap(),
        "run",
        "--agent",
        "ops",
        "--",
        "/bin/true",
    ]);
    assert!(
        !output.status.success(),
        "the nested kya run must be refused"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("agent processes cannot use the control socket"),
        "refusal says why: {stderr}"
    );
}
