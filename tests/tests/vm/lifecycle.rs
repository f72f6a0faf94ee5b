//! The daemon's life: started, it adopts the processes running before it (or runs its embedded
//! default config); killed, it leaves every rule and grant in force (grants still ending on
//! time); restarted, it takes over with no duplicate programs; only `kya-agent unload` ends
//! enforcement, and no agent can do what it does.
use std::{
    fs,
    path::Path,
    thread,
    time::{Duration, Instant},
};

use kya_tests::{
    CODER_CGROUP, CODER_UID, Daemon, EPERM, Fixture, Probe, eventually, kya, kya_agent, no_daemon,
    op, op_exe, require_vm,
};

const SECRET: &str = "/home/alice/.aws/credentials";
const KUBE: &str = "/root/.kube/config";
const PINS: &str = "/sys/fs/bpf/kya";

fn plant() {
    for path in [SECRET, KUBE] {
        fs::create_dir_all(Path::new(path).parent().unwrap()).unwrap();
        fs::write(path, "secret\n").unwrap();
    }
}

/// How many loaded BPF programs are called `name`.
fn programs_named(name: &str) -> usize {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter(|program| program.name_as_str() == Some(name))
        .count()
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

#[test]
fn only_unload_ends_enforcement_and_agents_cannot_touch_the_pins() {
    require_vm();
    let fixture = Fixture::new();
    plant();
    let daemon = Daemon::start(&fixture.config);
    let pins: Vec<_> = fs::read_dir(format!("{PINS}/links"))
        .unwrap()
        .flat_map(|generation| fs::read_dir(generation.unwrap().path()).unwrap())
        .map(|pin| pin.unwrap().path())
        .collect();
    let pin = pins
        .iter()
        .find(|pin| pin.ends_with("file_open"))
        .expect("file_open's link is pinned")
        .display()
        .to_string();
    assert_eq!(
        op(Some("coder"), &["unlink", &pin]),
        Err(EPERM),
        "unlink a pin"
    );
    assert_eq!(
        op(Some("coder"), &["rename", &pin, "/sys/fs/bpf/elsewhere"]),
        Err(EPERM),
        "move a pin"
    );
    let refused = kya_agent(&["unload"]);
    assert!(!refused.status.success(), "unload while the daemon runs");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("stop it first"));

    // SIGTERM stops the daemon, not enforcement.
    let status = daemon.stop_keeping_pins();
    assert!(status.success(), "{status}");
    assert_eq!(op_exe(&fixture.coder_exe, &["read", SECRET]), Err(EPERM));
    // `kya status` tells a stopped daemon apart.
    let stopped = kya(&["status"]);
    assert_eq!(stopped.status.code(), Some(3), "{stopped:?}");
    assert!(String::from_utf8_lossy(&stopped.stdout).contains("not running"));

    let unloaded = kya_agent(&["unload"]);
    assert!(unloaded.status.success(), "{unloaded:?}");
    assert!(!Path::new(PINS).exists(), "every pin is gone");
    // The kernel frees a program once its last link is gone, after an RCU grace period.
    assert!(
        eventually(Duration::from_secs(10), || programs_named("file_open") == 0),
        "every program detached"
    );
    assert!(
        op_exe(&fixture.coder_exe, &["read", SECRET]).is_ok(),
        "enforcement ended"
    );
}

// The two tests below start a daemon where none runs. Their names sort them right after the
// unload above, which leaves none: a daemon start is the costliest step of a test.

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
