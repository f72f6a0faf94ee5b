//! An agent, root included, uses cgroups only inside the subtree it runs in: it cannot move a
//! process out of it (itself included) or into it from outside, nor write the control files
//! of other cgroups (kya-agent's, the root's, a sibling's) or the limits of its own. Below its
//! cgroup it may do as it likes. Untagged root may do all of it.
use std::{fs, path::Path, time::Duration};

use kya_tests::{
    Daemon, EPERM, Fixture, OpResult, Probe, cgroup_dir, events, eventually, op_exe_in_cgroup,
};

/// The test's cgroups: the agent's, a sibling with a bystander in it, and kya-agent's own.
const TOP: &str = "/kya-test";
const AGENT: &str = "/kya-test/agent";
const SIBLING: &str = "/kya-test/sibling";
const DAEMON: &str = "/kya-test/daemon";
const CHILD: &str = "/kya-test/agent/child";

fn file(cgroup: &str, name: &str) -> String {
    cgroup_dir(cgroup).join(name).display().to_string()
}

fn assert_refused(result: &OpResult, what: &str) {
    assert_eq!(result, &Err(EPERM), "{what} must be refused with EPERM");
}

fn assert_done(result: &OpResult, what: &str) {
    assert!(result.is_ok(), "{what} must succeed, got {result:?}");
}

/// Moves process `pid` into `cgroup` (as the untagged test).
fn move_to(pid: u32, cgroup: &str) {
    fs::write(file(cgroup, "cgroup.procs"), pid.to_string())
        .unwrap_or_else(|error| panic!("moving {pid} into {cgroup}: {error}"));
}

/// The cgroups with the memory and pids controllers, where their limit files exist.
fn make_cgroups() {
    let root = cgroup_dir("/");
    fs::write(root.join("cgroup.subtree_control"), "+memory +pids")
        .expect("enable the memory and pids controllers at the root");
    fs::create_dir_all(cgroup_dir(TOP)).expect("the test's cgroup");
    fs::write(
        cgroup_dir(TOP).join("cgroup.subtree_control"),
        "+memory +pids",
    )
    .expect("enable the memory and pids controllers below the test's cgroup");
    for cgroup in [AGENT, SIBLING, DAEMON] {
        fs::create_dir_all(cgroup_dir(cgroup)).expect("a test cgroup");
    }
}

#[test]
fn a_root_agent_stays_in_its_cgroup_subtree_and_controls_no_other_cgroup() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture.config);
    make_cgroups();
    move_to(daemon.pid(), DAEMON);
    let bystander = Probe::plain(&["self"]);
    move_to(bystander.pid(), SIBLING);
    let ops = |args: &[&str]| op_exe_in_cgroup(&fixture.ops_exe, AGENT, args);

    assert_stays_in_its_subtree(&ops, &[bystander.pid(), daemon.pid()]);
    assert_controls_no_other_cgroup(&ops);
    assert!(
        fs::read_to_string(format!("/proc/{}/cgroup", daemon.pid()))
            .unwrap()
            .contains(DAEMON),
        "kya-agent is where it was"
    );
    assert!(
        Path::new(&format!("/proc/{}", bystander.pid())).exists(),
        "the bystander lives"
    );
    let _ = daemon.ps(); // kya-agent still answers
    // Reading is fine.
    assert_done(
        &ops(&["read", &file(DAEMON, "memory.max")]),
        "reading kya-agent's memory.max",
    );
    assert_done(
        &ops(&["read", &file(DAEMON, "cgroup.procs")]),
        "reading cgroup.procs",
    );
    assert!(eventually(Duration::from_secs(10), || {
        events().iter().any(|event| event["kind"] == "cgroup")
    }));
    assert_free_below_its_cgroup(&ops);
    assert_untagged_root_may_do_it_all();

    move_to(daemon.pid(), "/");
    drop(bystander);
    let _ = fs::remove_dir(file(TOP, "agent-made"));
    let _ = fs::remove_dir(cgroup_dir(CHILD));
}

/// Moving itself anywhere outside its subtree, whatever the way, or `outsiders` in.
fn assert_stays_in_its_subtree(ops: &impl Fn(&[&str]) -> OpResult, outsiders: &[u32]) {
    for cgroup in [SIBLING, DAEMON, TOP, "/"] {
        assert_refused(
            &ops(&["write", &file(cgroup, "cgroup.procs"), "0"]),
            &format!("moving itself to {cgroup}"),
        );
        assert_refused(
            &ops(&["write", &file(cgroup, "cgroup.threads"), "0"]),
            &format!("moving a thread to {cgroup}"),
        );
        assert_refused(
            &ops(&["clone3-into", &cgroup_dir(cgroup).display().to_string()]),
            &format!("clone3 into {cgroup}"),
        );
    }
    // Pulling a process in from outside is a move out of its cgroup too.
    fs::create_dir_all(cgroup_dir(CHILD)).expect("the agent's child cgroup");
    for pid in outsiders {
        assert_refused(
            &ops(&["write", &file(AGENT, "cgroup.procs"), &pid.to_string()]),
            &format!("pulling process {pid} into its own cgroup"),
        );
        assert_refused(
            &ops(&["write", &file(CHILD, "cgroup.procs"), &pid.to_string()]),
            &format!("pulling process {pid} into its child cgroup"),
        );
    }
}

/// Other cgroups' control files (kya-agent's, a sibling's, the root's), its own cgroup's
/// limits, and cgroups beside its own.
fn assert_controls_no_other_cgroup(ops: &impl Fn(&[&str]) -> OpResult) {
    for (cgroup, name, value) in [
        (DAEMON, "cgroup.kill", "1"),
        (DAEMON, "cgroup.freeze", "1"),
        (DAEMON, "memory.max", "1M"),
        (DAEMON, "pids.max", "1"),
        (SIBLING, "cgroup.kill", "1"),
        (SIBLING, "cgroup.freeze", "1"),
        (SIBLING, "memory.max", "1M"),
        (SIBLING, "pids.max", "1"),
        (TOP, "cgroup.subtree_control", "-pids"),
        ("/", "cgroup.subtree_control", "-pids"),
        (AGENT, "memory.max", "max"),
        (AGENT, "pids.max", "max"),
        (AGENT, "cgroup.freeze", "1"),
    ] {
        let path = file(cgroup, name);
        assert_refused(&ops(&["write", &path, value]), &format!("writing {path}"));
        assert_refused(
            &ops(&["open-write", &path]),
            &format!("opening {path} to write"),
        );
    }
    let outside = file(TOP, "agent-made");
    assert_refused(&ops(&["mkdir", &outside]), "a cgroup beside its own");
    assert!(!Path::new(&outside).exists());
    assert_refused(
        &ops(&[
            "rename",
            &cgroup_dir(SIBLING).display().to_string(),
            &outside,
        ]),
        "renaming a sibling cgroup",
    );
}

/// Inside its subtree it does as it likes: a child cgroup, and moving itself into it.
fn assert_free_below_its_cgroup(ops: &impl Fn(&[&str]) -> OpResult) {
    let grandchild = file(CHILD, "build");
    assert_done(&ops(&["mkdir", &grandchild]), "a cgroup below its own");
    assert_done(
        &ops(&["write", &file(CHILD, "cgroup.procs"), "0"]),
        "moving itself into its child cgroup",
    );
    assert_done(
        &ops(&["write", &file(AGENT, "cgroup.procs"), "0"]),
        "moving itself within its own cgroup",
    );
    assert_done(
        &ops(&["clone3-into", &cgroup_dir(CHILD).display().to_string()]),
        "clone3 into its child cgroup",
    );
    assert_done(
        &ops(&["write", &file(CHILD, "cgroup.freeze"), "0"]),
        "writing cgroup.freeze below its own cgroup",
    );
    assert_done(
        &ops(&["rmdir", &grandchild]),
        "removing a cgroup below its own",
    );
}

/// Untagged root does all of it.
fn assert_untagged_root_may_do_it_all() {
    let plain = |args: &[&str]| op_exe_in_cgroup(&kya_tests::bin("kya-probe"), AGENT, args);
    assert_done(
        &plain(&["write", &file(SIBLING, "pids.max"), "100"]),
        "untagged root writing a sibling's pids.max",
    );
    assert_done(
        &plain(&["write", &file(DAEMON, "memory.max"), "max"]),
        "untagged root writing kya-agent's memory.max",
    );
    assert_done(
        &plain(&["write", &file(SIBLING, "cgroup.procs"), "0"]),
        "untagged root moving itself to a sibling",
    );
    assert_done(
        &plain(&["clone3-into", &cgroup_dir(SIBLING).display().to_string()]),
        "untagged root cloning into a sibling",
    );
    assert_done(
        &plain(&["mkdir", &file(TOP, "agent-made")]),
        "untagged root making a cgroup",
    );
}

/// A cgroup v1 hierarchy, here a named one without controllers, has no delegation model (and
/// a `release_agent` the kernel runs as root): agents write nothing on one.
#[test]
fn a_root_agent_writes_nothing_on_a_cgroup_v1_hierarchy() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    let mount_point = Path::new("/tmp/kya-cgroup-v1");
    fs::create_dir_all(mount_point).unwrap();
    nix::mount::mount(
        Some("cgroup"),
        mount_point,
        Some("cgroup"),
        nix::mount::MsFlags::empty(),
        Some("none,name=kyatest"),
    )
    .expect("this kernel mounts a named cgroup v1 hierarchy");
    let at = |name: &str| mount_point.join(name).display().to_string();
    let ops = |args: &[&str]| kya_tests::op_exe(&fixture.ops_exe, args);
    assert_refused(&ops(&["mkdir", &at("agent")]), "a v1 cgroup");
    assert_refused(
        &ops(&["write", &at("notify_on_release"), "1"]),
        "notify_on_release",
    );
    assert_refused(
        &ops(&["write", &at("cgroup.procs"), "0"]),
        "joining a v1 cgroup",
    );
    assert_done(&ops(&["read", &at("cgroup.procs")]), "reading a v1 cgroup");
    assert_done(
        &kya_tests::op(None, &["mkdir", &at("root")]),
        "untagged root",
    );
    let _ = fs::remove_dir(at("root"));
    nix::mount::umount(mount_point).expect("unmount the v1 hierarchy");
}
