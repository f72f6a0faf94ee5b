//! Enforcement outlives the daemon: killed, it leaves every rule and grant in force (grants
//! still ending on time); restarted, it takes over with no duplicate programs. (Its start is in
//! `boot`, the end of enforcement in `unload`.)
use std::{
    fs,
    path::Path,
    thread,
    time::{Duration, Instant},
};

use kya_tests::{
    Daemon, EPERM, Fixture, Probe, eventually, kya, op, op_exe, programs_named, require_vm,
};

const SECRET: &str = "/home/alice/.aws/credentials";
const KUBE: &str = "/root/.kube/config";

fn plant() {
    for path in [SECRET, KUBE] {
        fs::create_dir_all(Path::new(path).parent().unwrap()).unwrap();
        fs::write(path, "secret\n").unwrap();
    }
}

#[test]
fn a_killed_daemon_leaves_enforcement_and_grants_in_force_and_a_restart_takes_over() {
    require_vm();
    let fixture = Fixture::new();
    plant();
    let daemon = Daemon::start(&fixture.config);
    let agent = Probe::as_agent("coder", &["self"]);
    let granted_at = Instant::now();
    let grant = kya(&["grant", "--agent", "coder", "--file", SECRET, "--for", "8s"]);
    assert!(grant.status.success(), "{grant:?}");
    assert!(op_exe(&fixture.coder_exe, &["read", SECRET]).is_ok());
    daemon.kill();

    // No daemon: new agents are still tagged and confined, the grant still works...
    let protected = op_exe(&fixture.coder_exe, &["read", KUBE]);
    let granted = op_exe(&fixture.coder_exe, &["read", SECRET]);
    let untagged = op(None, &["read", KUBE]);
    assert!(
        granted_at.elapsed() < Duration::from_secs(8),
        "the test was too slow to use the grant before it ended"
    );
    assert_eq!(protected, Err(EPERM));
    assert!(
        granted.is_ok(),
        "the grant works without the daemon: {granted:?}"
    );
    assert!(untagged.is_ok(), "untagged processes are unaffected");
    // ...and ends on time.
    thread::sleep(Duration::from_secs(9).saturating_sub(granted_at.elapsed()));
    assert_eq!(op_exe(&fixture.coder_exe, &["read", SECRET]), Err(EPERM));
    assert_eq!(programs_named("file_open"), 1);

    // A new daemon takes over: the same single set of programs, the tags it kept.
    let restarted = Daemon::restart(&fixture.config);
    // The retired generation's programs are freed once the kernel's grace period ends.
    assert!(
        eventually(Duration::from_secs(10), || programs_named("file_open") == 1
            && programs_named("task_alloc") == 1),
        "no duplicate programs: {} file_open, {} task_alloc",
        programs_named("file_open"),
        programs_named("task_alloc")
    );
    restarted.assert_tagged(agent.pid(), "coder", "run");
    assert!(eventually(Duration::from_secs(10), || {
        let out = kya(&["grants", "--json"]);
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "[]"
    }));
    assert_eq!(op_exe(&fixture.coder_exe, &["read", SECRET]), Err(EPERM));
}
