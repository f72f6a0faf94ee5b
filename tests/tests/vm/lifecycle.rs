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
    // The grant began by now: it ends at most 8 s after this.
    let grant_began = Instant::now();
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
    thread::sleep(Duration::from_secs(9).saturating_sub(grant_began.elapsed()));
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

/// The daemon's resident memory at rest, apart from its own machine code, in KiB.
const REST_WITHOUT_CODE_KIB: u64 = 15 * 1024;

/// The daemon stays small at rest: below 20 MiB resident with the release build (what
/// `cargo xtask bench` reports). The tests run the debug build, whose machine code alone is
/// about 9 MiB resident against 3.5 MiB optimised; so everything but the code (heap, stacks,
/// data, the ring buffer's mapping, libraries) must stay below 15 MiB, which leaves the release
/// build's code 5 MiB of the 20.
#[test]
fn the_daemon_stays_small_at_rest() {
    require_vm();
    let fixture = Fixture::new();
    plant();
    let daemon = Daemon::start(&fixture.config);
    // At rest: the reload's and the watcher's work done (settle, pause, resolution).
    thread::sleep(Duration::from_secs(5));
    let pid = daemon.pid();
    let exe = fs::read_link(format!("/proc/{pid}/exe")).expect("the daemon's executable");
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps")).expect("the daemon's smaps");
    let mut total = 0;
    let mut code = 0;
    let mut in_code = false;
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.first().is_some_and(|range| range.contains('-')) && fields.len() >= 5 {
            in_code = fields[1].contains('x') && fields.get(5) == Some(&exe.to_str().unwrap());
        } else if fields.first() == Some(&"Rss:") {
            let kib: u64 = fields[1].parse().expect("Rss in kB");
            total += kib;
            if in_code {
                code += kib;
            }
        }
    }
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let vm_rss = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .unwrap_or("VmRSS: ?");
    assert!(code > 0, "no code mapping of {} found", exe.display());
    assert!(
        total - code < REST_WITHOUT_CODE_KIB,
        "the daemon at rest holds {total} KiB resident ({vm_rss}), {} KiB of it besides its \
         code ({code} KiB); expected below {REST_WITHOUT_CODE_KIB} KiB",
        total - code
    );
    eprintln!(
        "daemon at rest: {total} KiB resident, {code} KiB of it code, {} KiB the rest",
        total - code
    );
}
