//! An agent, even running as root, cannot change the mounts that processes outside it see:
//! `mount` (new mounts, bind mounts, remounts, moves, propagation changes), `umount`,
//! `move_mount` of a detached tree and `pivot_root` are refused in any mount namespace it did
//! not make for itself. In one it made (`unshare -m`, `unshare -Urm`) it builds its sandbox
//! freely, except where a change would propagate out of it (below a shared mount) or reach a
//! filesystem as a whole (a superblock remount).
use std::{
    fs,
    io::{Read as _, Write as _},
    net::TcpStream,
    os::unix::fs::PermissionsExt as _,
    path::Path,
    time::Duration,
};

use kya_tests::{
    Checks, Daemon, Fixture, OpResult, Probe, SCRATCH, bin, events, eventually, op, op_with_fd,
};

/// Where the tests mount.
const MOUNTS: &str = "/tmp/kya-test/mounts";

/// A tagged root process (agent `ops` through `kya run`, as root).
fn agent(args: &[&str]) -> OpResult {
    op(Some("ops"), args)
}

/// An untagged root process.
fn root(args: &[&str]) -> OpResult {
    op(None, args)
}

fn dir(name: &str) -> String {
    let path = Path::new(MOUNTS).join(name);
    fs::create_dir_all(&path).unwrap_or_else(|error| panic!("create {}: {error}", path.display()));
    path.to_str().expect("utf-8 path").to_owned()
}

/// Whether `path` is a mount point in the test's (the host's) mount namespace.
fn mounted(path: &str) -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .any(|line| line.split(' ').nth(4) == Some(path))
}

/// Unmounts everything the tests mounted below [`MOUNTS`] (deepest first).
fn clean_up() {
    let mut points: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter_map(|line| line.split(' ').nth(4).map(str::to_owned))
        .filter(|point| point.starts_with(MOUNTS))
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.len()));
    for point in points {
        let _ = nix::mount::umount2(point.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// `kya_denied_total{agent,kind="mount"}` from the daemon's metrics endpoint.
fn denied_mounts(agent: &str) -> f64 {
    let mut stream = TcpStream::connect("127.0.0.1:9464").expect("metrics endpoint");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: kya\r\n\r\n")
        .expect("metrics request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("metrics");
    let series = format!(r#"kya_denied_total{{agent="{agent}",kind="mount"}} "#);
    response
        .lines()
        .find_map(|line| line.strip_prefix(series.as_str())?.parse().ok())
        .unwrap_or_else(|| panic!("no series {series}in the metrics"))
}

/// A tmpfs mounted by untagged root at `MOUNTS/name`, for the agent to try to change.
fn test_mount(name: &str) -> String {
    let point = dir(name);
    if !mounted(&point) {
        nix::mount::mount(
            Some("kya-test"),
            point.as_str(),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap_or_else(|error| panic!("mount a tmpfs on {point}: {error}"));
    }
    point
}

/// How many operations the first test expects refused.
const REFUSED: f64 = 14.0;

#[test]
fn a_root_agent_cannot_change_the_mounts_others_see() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    clean_up();
    let before = denied_mounts("ops");
    let mut checks = Checks::default();
    let etc_kya = "/etc/kya";
    fs::create_dir_all(etc_kya).unwrap();
    let target = dir("target");
    let source = dir("source");
    let mounted_here = test_mount("mounted");
    let kya_bin = bin("kya");
    let kya_path = kya_bin.to_str().unwrap();
    let decoy = Path::new(MOUNTS).join("decoy");
    fs::write(&decoy, b"#!/bin/sh\n").unwrap();
    let decoy = decoy.to_str().unwrap();

    // New mounts over kya's config and state, and bind mounts over its binary.
    checks.denied(&agent(&["mount-tmpfs", etc_kya]), "a tmpfs over /etc/kya");
    checks.denied(
        &agent(&["mount-tmpfs", SCRATCH]),
        "a tmpfs over the config's directory",
    );
    checks.denied(&agent(&["mount-tmpfs", &target]), "a tmpfs anywhere");
    checks.denied(
        &agent(&["bind-mount", decoy, kya_path]),
        "a bind mount over kya",
    );
    checks.denied(
        &agent(&["bind-mount", &source, &target]),
        "a bind mount anywhere",
    );
    // Changes to an existing mount.
    checks.denied(
        &agent(&["remount-bind-ro", &mounted_here]),
        "a bind remount",
    );
    checks.denied(&agent(&["remount", &mounted_here]), "a superblock remount");
    checks.denied(
        &agent(&["make-private", &mounted_here]),
        "a propagation change",
    );
    checks.denied(
        &agent(&["move-mount-legacy", &mounted_here, &target]),
        "MS_MOVE",
    );
    // Unmounting kya's pins (and anything else).
    checks.denied(&agent(&["umount", "/sys/fs/bpf"]), "umount /sys/fs/bpf");
    checks.denied(
        &agent(&["umount-detach", "/sys/fs/bpf"]),
        "umount -l /sys/fs/bpf",
    );
    checks.denied(&agent(&["umount", &mounted_here]), "umount of a test mount");
    // The new mount API: a detached copy attached elsewhere.
    checks.denied(
        &agent(&["open-tree-attach", &source, &target]),
        "move_mount of open_tree",
    );
    // pivot_root, checked before the kernel's own checks.
    checks.denied(
        &agent(&["pivot-root", &mounted_here, &mounted_here]),
        "pivot_root",
    );
    checks.that(
        mounted("/sys/fs/bpf") && mounted(&mounted_here) && !mounted(&target),
        "the agent's attempts changed no mount",
    );
    checks.that(
        !mounted(etc_kya) && !mounted(SCRATCH) && !mounted(kya_path),
        "nothing is mounted over kya's files",
    );

    root_is_unaffected(
        &mut checks,
        &target,
        &source,
        &mounted_here,
        kya_path,
        decoy,
    );

    checks.that(
        eventually(Duration::from_secs(10), || {
            events().iter().any(|event| {
                event["kind"] == "mount"
                    && event["agent"] == "ops"
                    && event["why"].as_str().is_some_and(|why| {
                        why.starts_with("unmount: ") && why.contains("namespace")
                    })
            })
        }),
        "an event of kind mount that names the operation",
    );
    checks.that(
        eventually(Duration::from_secs(10), || {
            denied_mounts("ops") >= before + REFUSED
        }),
        "kya_denied_total{kind=\"mount\"} counts every refusal",
    );
    clean_up();
    checks.finish();
}

#[test]
fn an_agent_builds_its_sandbox_in_a_mount_namespace_it_made() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    clean_up();
    let mut checks = Checks::default();
    let sandbox = dir("sandbox");
    let target = dir("target");
    let source = dir("source");
    let mounted_here = test_mount("mounted");

    // `unshare -m`: every mount made private, then mount, write, unmount.
    checks.allowed(
        &agent(&["unshare-mount", "private", "sandbox", &sandbox]),
        "a tmpfs sandbox in the agent's own mount namespace",
    );
    checks.allowed(
        &agent(&["unshare-mount", "private", "bind-mount", &source, &target]),
        "a bind mount in its own namespace",
    );
    checks.allowed(
        &agent(&[
            "unshare-mount",
            "private",
            "open-tree-attach",
            &source,
            &target,
        ]),
        "move_mount of an open_tree clone in its own namespace",
    );
    checks.allowed(
        &agent(&["unshare-mount", "private", "remount-bind-ro", &mounted_here]),
        "a bind remount in its own namespace",
    );
    checks.allowed(
        &agent(&["unshare-mount", "private", "umount", "/sys/fs/bpf"]),
        "unmounting its own copy of /sys/fs/bpf",
    );
    checks.not_refused(
        &agent(&[
            "unshare-mount",
            "private",
            "pivot-root",
            &mounted_here,
            &mounted_here,
        ]),
        "pivot_root in its own namespace (the kernel's own answer)",
    );
    checks.that(
        mounted("/sys/fs/bpf") && !mounted(&sandbox) && !mounted(&target),
        "nothing the agent did in its namespace shows outside it",
    );
    // Even there, a filesystem's options are everyone's.
    checks.denied(
        &agent(&["unshare-mount", "private", "remount", &mounted_here]),
        "a superblock remount in its own namespace",
    );

    propagation_stays_inside(&mut checks, &mounted_here);

    // A mount namespace someone else made is not the agent's, though it is not the host's.
    // (The test opens the namespace: opening another process's namespace file is a ptrace
    // access, which kya refuses to an agent by itself.)
    let other = Probe::plain(&["namespaces"]);
    let namespace = fs::File::open(format!("/proc/{}/ns/mnt", other.pid())).expect("ns file");
    checks.denied(
        &op_with_fd(
            Some("ops"),
            &namespace,
            &["setns-mount", "3", "mount-tmpfs", "/tmp"],
        ),
        "a mount in a namespace an untagged process made",
    );
    drop(other);

    // A non-root agent (uid 1001 is agent coder's) with a user namespace: `unshare -Urm`.
    let userns =
        fs::read_to_string("/proc/sys/user/max_user_namespaces").is_ok_and(|max| max.trim() != "0");
    checks.that(
        userns,
        "the VM kernel must allow user namespaces (user.max_user_namespaces > 0)",
    );
    fs::set_permissions(&sandbox, fs::Permissions::from_mode(0o777)).unwrap();
    checks.allowed(
        &root(&["as-uid", "1001", "unshare-user-mount", "sandbox", &sandbox]),
        "a rootless sandbox (unshare -Urm) of a non-root agent",
    );
    clean_up();
    checks.finish();
}

/// Untagged root may make every change refused to the agent (each undone at once).
fn root_is_unaffected(
    checks: &mut Checks,
    target: &str,
    source: &str,
    mounted_here: &str,
    kya_path: &str,
    decoy: &str,
) {
    checks.allowed(&root(&["mount-tmpfs", target]), "root mounts a tmpfs");
    checks.allowed(&root(&["umount", target]), "root unmounts it");
    checks.allowed(&root(&["bind-mount", kya_path, decoy]), "root bind-mounts");
    checks.allowed(&root(&["umount", decoy]), "root unmounts the bind mount");
    checks.allowed(
        &root(&["remount-bind-ro", mounted_here]),
        "root bind-remounts",
    );
    checks.allowed(
        &root(&["make-private", mounted_here]),
        "root changes propagation",
    );
    checks.allowed(
        &root(&["open-tree-attach", source, target]),
        "root attaches an open_tree clone",
    );
    checks.allowed(&root(&["umount", target]), "root unmounts it again");
    checks.allowed(
        &root(&["move-mount-legacy", mounted_here, target]),
        "root moves a mount",
    );
    checks.allowed(&root(&["umount", target]), "root unmounts the moved mount");
    // In a namespace of its own, so that a pivot cannot disturb the VM: the kernel's own answer.
    checks.not_refused(
        &root(&[
            "unshare-mount",
            "private",
            "pivot-root",
            mounted_here,
            mounted_here,
        ]),
        "root's pivot_root",
    );
}

/// In a namespace copied with its propagation as it was, a mount or unmount below a shared
/// mount would propagate back to the host's namespace.
fn propagation_stays_inside(checks: &mut Checks, mounted_here: &str) {
    checks.allowed(
        &root(&["make-shared", mounted_here]),
        "root shares a test mount",
    );
    let below_shared = format!("{mounted_here}/inner");
    fs::create_dir_all(&below_shared).unwrap();
    checks.denied(
        &agent(&["unshare-mount", "as-is", "mount-tmpfs", &below_shared]),
        "a mount below a shared mount, from its own namespace",
    );
    checks.allowed(
        &root(&["mount-tmpfs", &below_shared]),
        "root mounts below the shared mount",
    );
    checks.denied(
        &agent(&["unshare-mount", "as-is", "umount", &below_shared]),
        "an unmount below a shared mount, from its own namespace",
    );
    checks.that(
        mounted(&below_shared),
        "the host's mount below the shared mount stays",
    );
    checks.allowed(
        &agent(&["unshare-mount", "private", "umount", &below_shared]),
        "the same unmount once its namespace is private",
    );
    checks.that(
        mounted(&below_shared),
        "a private namespace's unmount stays inside it",
    );
    checks.allowed(
        &agent(&["unshare-mount", "private", "sandbox", &below_shared]),
        "the same mount once its namespace is private",
    );
}
