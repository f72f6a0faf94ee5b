//! The daemon's start on a host: with no config it runs its embedded default, and the
//! processes already running when it starts are adopted by every kind of match rule.
//!
//! These tests need a kernel where no daemon runs. The module's name sorts it first, while none
//! runs yet, and the daemon the last test starts serves the tests after it: a daemon start is
//! the costliest step of a test.
use kya_tests::{CODER_CGROUP, CODER_UID, Daemon, Fixture, Probe, no_daemon, require_vm};

#[test]
fn plain_kya_agent_runs_the_embedded_default_config() {
    require_vm();
    let daemon = Daemon::start_with_args(&[]);
    assert!(
        daemon.ps().is_empty(),
        "the default config matches nothing here"
    );
    let status = daemon.stop();
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
}

#[test]
fn processes_running_before_the_daemon_are_adopted() {
    let fixture = Fixture::new();
    no_daemon();
    let by_exe = Probe::start(&fixture.coder_exe, &["fork"]);
    let by_uid = Probe::plain(&["setuid", &CODER_UID.to_string()]);
    let by_cgroup = Probe::plain(&["cgroup", CODER_CGROUP]);
    let unrelated = Probe::plain(&["fork"]);

    let daemon = Daemon::start_fresh(&fixture.config);
    for &pid in &by_exe.pids {
        let entry = daemon.assert_tagged(pid, "coder", "exe");
        assert_eq!(entry.origin, "adopted");
    }
    assert_eq!(
        daemon.assert_tagged(by_uid.pid(), "coder", "uid").origin,
        "adopted"
    );
    assert_eq!(
        daemon
            .assert_tagged(by_cgroup.pid(), "coder", "cgroup")
            .origin,
        "adopted"
    );
    for &pid in &unrelated.pids {
        daemon.assert_untagged(pid);
    }
    // What the adopted processes start from now on is tagged by the kernel itself.
    let child = Probe::start(&fixture.ops_exe, &["self"]);
    daemon.assert_tagged(child.pid(), "ops", "exe");
}
