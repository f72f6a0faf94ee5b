//! Other processes' command lines: tokens passed as arguments (`--token=...`, `mysql -pSECRET`)
//! are readable in `/proc/PID/cmdline` without the ptrace check that guards a process's
//! environment. An agent gets EPERM for the command line of any process that is not its own
//! agent's, by every path and descriptor; its own stay readable, `ps` still lists every process
//! by pid and name, and untagged processes read everything.
use std::{fs, path::PathBuf, process::Command, time::Duration};

use kya_tests::{
    CODER_UID, Daemon, EPERM, Fixture, OpResult, Probe, bin, events, eventually, op, op_as_uid,
    op_with_fd, scratch, serve_descriptor,
};

/// What the untagged process carries on its command line.
const SECRET: &str = "kya-cmdline-secret-4711";
/// Where the non-root agent (uid `CODER_UID`, tagged by coder's `match.uid`) runs.
const CODER_HOME: &str = "/home/coder";
/// `ESRCH`: what reading the command line of a process that is gone returns.
const ESRCH: i32 = 3;

fn token() -> String {
    format!("--token={SECRET}")
}

/// An untagged process with the secret on its command line.
fn start_victim() -> Probe {
    Probe::plain(&["self", &token()])
}

fn assert_refused(result: &OpResult, what: &str) {
    assert_eq!(result, &Err(EPERM), "{what} must be refused with EPERM");
}

fn assert_read(result: &OpResult, what: &str) {
    match result {
        Ok(detail) if !detail.starts_with("0 bytes") => {}
        other => panic!("{what} must read the command line, got {other:?}"),
    }
}

/// A second procfs mount, made by an untagged process; unmounted when dropped.
struct SecondProc(PathBuf);

impl SecondProc {
    fn mount() -> Self {
        let dir = scratch("cmdlines").join("proc");
        fs::create_dir_all(&dir).expect("mount point");
        nix::mount::mount(
            Some("proc"),
            &dir,
            Some("proc"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .expect("mount a second procfs");
        Self(dir)
    }

    fn cmdline(&self, pid: u32) -> String {
        self.0.join(format!("{pid}/cmdline")).display().to_string()
    }
}

impl Drop for SecondProc {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn agents_cannot_read_other_processes_command_lines() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture.config);
    fs::create_dir_all(CODER_HOME).expect("coder's home");
    let victim = start_victim();
    let pid = victim.pid();
    let other_agent = Probe::as_agent("ops", &["self", &token()]);
    let sibling = Probe::as_agent("coder", &["self", &token()]);
    daemon.assert_untagged(pid);
    daemon.assert_tagged(sibling.pid(), "coder", "run");
    let second_proc = SecondProc::mount();
    let paths = [
        format!("/proc/{pid}/cmdline"),
        format!("/proc/{pid}/task/{pid}/cmdline"),
        format!("/proc/self/../{pid}/cmdline"),
        second_proc.cmdline(pid),
    ];
    for path in &paths {
        assert_read(
            &op(None, &["read", path]),
            &format!("untagged reading {path}"),
        );
        assert_refused(
            &op(Some("coder"), &["read", path]),
            &format!("root agent coder reading {path}"),
        );
        assert_refused(
            &op_as_uid(CODER_UID, CODER_HOME, &["read", path]),
            &format!("non-root agent coder (uid {CODER_UID}) reading {path}"),
        );
    }
    let dir = format!("/proc/{pid}");
    assert_read(&op(None, &["read-at", &dir, "cmdline"]), "untagged openat");
    assert_refused(
        &op(Some("coder"), &["read-at", &dir, "cmdline"]),
        "openat(cmdline) relative to a /proc/PID descriptor",
    );
    let other = format!("/proc/{}/cmdline", other_agent.pid());
    assert_refused(
        &op(Some("coder"), &["read", &other]),
        "another agent's command line",
    );
    assert_read(&op(None, &["read", &other]), "untagged reading an agent's");

    // The agent's own: itself, its child, another process of the same agent.
    for own in ["/proc/self/cmdline", "/proc/thread-self/cmdline"] {
        assert_read(&op(Some("coder"), &["read", own]), own);
        assert_read(&op_as_uid(CODER_UID, CODER_HOME, &["read", own]), own);
    }
    assert_read(&op(Some("coder"), &["child-cmdline"]), "its child's");
    let sibling_path = format!("/proc/{}/cmdline", sibling.pid());
    assert_read(
        &op(Some("coder"), &["read", &sibling_path]),
        "another process of the same agent",
    );
    // The kernel's own command line is no process's.
    assert_read(
        &op(Some("coder"), &["read", "/proc/cmdline"]),
        "/proc/cmdline",
    );

    let reported = eventually(Duration::from_secs(5), || {
        events().iter().any(|event| {
            event["kind"] == "procfs"
                && event["agent"] == "coder"
                && event["target_pid"] == pid
                && event["name"] == "cmdline"
        })
    });
    assert!(
        reported,
        "the refusal reaches the daemon with the target's pid {pid}: {:#?}",
        events()
    );
}

#[test]
fn descriptors_of_other_processes_command_lines_cannot_read() {
    let fixture = Fixture::new();
    let victim = start_victim();
    let open = || fs::File::open(format!("/proc/{}/cmdline", victim.pid())).unwrap();
    // An untagged process that hands out a descriptor over a Unix socket coder may reach.
    let socket = scratch("cmdline-descriptors").join("fd.sock");
    let server = serve_descriptor(&socket, open());
    let config = fixture.config.replacen(
        "\n\n[[agents]]\nname = \"ops\"",
        &format!(
            "\n[agents.network]\nunix_allow = [\"{}\"]\n\n[[agents]]\nname = \"ops\"",
            socket.display()
        ),
        1,
    );
    let _daemon = Daemon::start(&config);
    assert_refused(
        &op(Some("coder"), &["recv-fd-read", socket.to_str().unwrap()]),
        "reading another process's command line through a descriptor received over a socket",
    );
    server.join().unwrap();
    // Refused as the read of a command line, not as the connection.
    let pid = victim.pid();
    let refused_read = eventually(Duration::from_secs(5), || {
        events()
            .iter()
            .any(|event| event["kind"] == "procfs" && event["target_pid"] == pid)
    });
    assert!(
        refused_read && !events().iter().any(|event| event["kind"] == "unix"),
        "the received descriptor's read is what was refused: {:#?}",
        events()
    );
    // Opened by an untagged process, inherited across `kya run`: read through it is refused.
    assert_refused(
        &op_with_fd(Some("coder"), &open(), &["read-fd", "3"]),
        "reading another process's command line through a descriptor opened before tagging",
    );
    assert_read(
        &op_with_fd(None, &open(), &["read-fd", "3"]),
        "untagged read through the descriptor",
    );
    // A descriptor held past its process's end: nothing to read, and refused to an agent.
    let gone = start_victim();
    let held = fs::File::open(format!("/proc/{}/cmdline", gone.pid())).unwrap();
    drop(gone);
    assert_eq!(
        op_with_fd(None, &held, &["read-fd", "3"]),
        Err(ESRCH),
        "untagged read of a command line whose process is gone"
    );
    assert_refused(
        &op_with_fd(Some("coder"), &held, &["read-fd", "3"]),
        "a command line whose process is gone",
    );
}

/// `ps` as busybox runs it: tagged through `kya run` (`uid` `None`) or by `match.uid`.
fn busybox_ps(uid: Option<u32>) -> String {
    use std::os::unix::process::CommandExt as _;
    let mut command = if let Some(uid) = uid {
        let mut command = Command::new("/bin/ps");
        command.uid(uid).gid(uid).current_dir(CODER_HOME);
        command
    } else {
        let mut command = Command::new(bin("kya"));
        command.args(["run", "--agent", "coder", "--", "/bin/ps"]);
        command
    };
    let output = command.output().expect("run ps");
    assert!(output.status.success(), "ps as {uid:?} failed: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn lists(listing: &str, pid: u32) -> bool {
    listing.lines().any(|line| {
        line.split_whitespace().next() == Some(&pid.to_string()) && line.contains("kya-probe")
    })
}

#[test]
fn ps_lists_every_process_to_an_agent_without_their_arguments() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    fs::create_dir_all(CODER_HOME).expect("coder's home");
    let victim = start_victim();
    let pid = victim.pid();
    // The minimal ps: /proc/PID/stat and /proc/PID/comm, and the command line where readable.
    let untagged = op(None, &["ps"]).expect("untagged ps");
    assert!(
        untagged.contains(SECRET),
        "an untagged ps sees the victim's arguments: {untagged}"
    );
    for (who, listing) in [
        ("root agent", op(Some("coder"), &["ps"])),
        ("non-root agent", op_as_uid(CODER_UID, CODER_HOME, &["ps"])),
    ] {
        let listing = listing.unwrap_or_else(|errno| panic!("ps as {who}: errno {errno}"));
        let entry = format!("{pid}:kya-probe");
        assert!(
            listing.split(' ').any(|listed| listed == entry),
            "ps as {who} lists {entry} without its arguments: {listing}"
        );
        assert!(
            !listing.contains(SECRET),
            "ps as {who} shows the secret: {listing}"
        );
    }
    // busybox ps, which shows `[comm]` where it cannot read a command line.
    let plain = Command::new("/bin/ps").output().expect("ps");
    let plain = String::from_utf8_lossy(&plain.stdout).into_owned();
    assert!(
        lists(&plain, pid) && plain.contains(SECRET),
        "untagged busybox ps: {plain}"
    );
    for uid in [None, Some(CODER_UID)] {
        let listing = busybox_ps(uid);
        assert!(
            lists(&listing, pid),
            "busybox ps as coder ({uid:?}) lists pid {pid} and its name: {listing}"
        );
        assert!(
            !listing.contains(SECRET),
            "busybox ps as coder ({uid:?}) shows the secret: {listing}"
        );
    }
}
