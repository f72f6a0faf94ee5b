//! Ghost agents: an agent whose owner's account is removed, locked or expired (by Debian's own
//! `userdel`, `usermod -L` and `chage -E 0`) is contained within seconds: its grants are
//! revoked, its allowlists suspended (a process already running is refused as well as a new
//! one, while an untagged process still reaches the same peer and file), requests for it are
//! refused with the reason, `kya status` and the metrics show it, and only a `kya reload` that
//! finds the owner living again ends it. `on_owner_gone = "stop"` kills its processes. Grants
//! of an approver whose account is gone are revoked; root's stay.
//!
//! The tests make their own users (`useradd`) and remove them at the end, so the shared
//! users (alice, coder, bob) of the other tests never change.
use std::{
    fs,
    net::TcpListener,
    os::unix::process::ExitStatusExt as _,
    path::Path,
    process::{Child, Command, Output, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use kya_tests::{
    Daemon, EPERM, Fixture, OpResult, Probe, STATE_DIR, eventually, kya, kya_as, no_daemon, op_exe,
};
use nix::sys::signal::Signal;

use crate::{
    grants::{grants, ok, pending, pending_id, refused},
    reload::metrics_body as metrics,
};

/// The owner the tests remove, lock and expire, and an approver who leaves.
const OWNER: (&str, u32) = ("gina", 1500);
const APPROVER: (&str, u32) = ("dora", 1501);
/// alice's password hash in the VM's shadow file (her password is "alice").
const HASH: &str = "$6$kyaalice$C4iAi063z6ltSFgID6rYFL2G7d9OWkTthbisWBhl/8OFfSgjJp2XtfuS7CBE0q9qAph53DJMOMfQCb6P9Ab4H.";

const DIR: &str = "/srv/ghost";
/// Protected from coder; `allow` exempts it.
const ALLOWED: &str = "/srv/ghost/allowed.txt";
/// Protected from coder; granted in the test.
const GRANTED: &str = "/srv/ghost/granted.txt";
/// Protected from coder; granted by root in the approver test.
const ROOTS: &str = "/srv/ghost/roots.txt";
/// On coder's network allowlist, served by a listener in the test.
const PEER: (&str, &str) = ("127.0.0.7", "8087");

/// How long containment may take: the passwd/shadow watch makes it seconds, the periodic
/// check a minute at most.
const CONTAINED_WITHIN: Duration = Duration::from_mins(1);

/// A user of the test's own: created now with a real password, removed when dropped.
struct User(&'static str);

impl User {
    fn create((name, uid): (&'static str, u32)) -> Self {
        let _ = Command::new("userdel").arg(name).output();
        shadow_tool("useradd", &["-M", "-u", &uid.to_string(), "-p", HASH, name]);
        Self(name)
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(self.0).output();
    }
}

fn shadow_tool(tool: &str, args: &[&str]) {
    let output = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("running {tool}: {error}"));
    assert!(
        output.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// How an account goes, and how it comes back.
#[derive(Clone, Copy, Debug)]
enum Departure {
    Removed,
    Locked,
    Expired,
}

impl Departure {
    fn apply(self, (name, _): (&str, u32)) {
        match self {
            Self::Removed => shadow_tool("userdel", &[name]),
            Self::Locked => shadow_tool("usermod", &["-L", name]),
            Self::Expired => shadow_tool("chage", &["-E", "0", name]),
        }
    }

    fn undo(self, (name, uid): (&str, u32)) {
        match self {
            Self::Removed => {
                shadow_tool("useradd", &["-M", "-u", &uid.to_string(), "-p", HASH, name]);
            }
            Self::Locked => shadow_tool("usermod", &["-U", name]),
            Self::Expired => shadow_tool("chage", &["-E", "-1", name]),
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Self::Removed => "owner_missing",
            Self::Locked => "owner_locked",
            Self::Expired => "owner_expired",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Self::Removed => "no longer exists",
            Self::Locked => "is locked",
            Self::Expired => "expired on 1970-01-01",
        }
    }
}

fn plant() {
    fs::create_dir_all(DIR).unwrap();
    for path in [ALLOWED, GRANTED, ROOTS] {
        fs::write(path, "ghost\n").unwrap();
    }
}

/// The fixture's config with coder owned by `gina`, approved by `dora`, allowed `ALLOWED` and
/// `PEER`, and refused everything else under `DIR`.
fn config(fixture: &Fixture, on_owner_gone: &str) -> String {
    let (coder, ops) = fixture
        .config
        .split_once("[[agents]]\nname = \"ops\"")
        .expect("fixture has an ops agent");
    let coder = coder.replacen(
        "owner = \"alice\"\n",
        &format!(
            "owner = \"{}\"\napprovers = [\"{}\"]\non_owner_gone = \"{on_owner_gone}\"\n",
            OWNER.0, APPROVER.0
        ),
        1,
    );
    format!(
        "{coder}[agents.files]\nprotect = [\"{DIR}/\"]\nallow = [\"{ALLOWED}\"]\n\
         [agents.network]\nallow = [\"{}:{}\"]\n\n[[agents]]\nname = \"ops\"{ops}",
        PEER.0, PEER.1
    )
}

fn connect(fixture: &Fixture) -> OpResult {
    op_exe(&fixture.coder_exe, &["tcp-connect", PEER.0, PEER.1])
}

fn read(fixture: &Fixture, path: &str) -> OpResult {
    op_exe(&fixture.coder_exe, &["read", path])
}

fn untagged(args: &[&str]) -> OpResult {
    kya_tests::op(None, args)
}

/// A shell tagged as coder (through `kya run`) that keeps trying to read `ALLOWED` itself (a
/// redirection opens the file in the shell's own process) and writes what the last try gave
/// to `log`.
fn running_agent(log: &Path) -> Child {
    let script = format!(
        "while :; do if {{ read -r line < {ALLOWED}; }} 2> {log}.err; then echo ok > {log}.new; \
         else cat {log}.err > {log}.new; fi; mv {log}.new {log}; sleep 0.2; done",
        log = log.display()
    );
    Command::new(kya_tests::bin("kya"))
        .args(["run", "--agent", "coder", "--", "sh", "-c", &script])
        .spawn()
        .expect("start the running agent")
}

fn last_try(log: &Path) -> String {
    fs::read_to_string(log).unwrap_or_default()
}

fn status() -> String {
    ok(&kya(&["status"]), "kya status")
}

fn contained_series(reason: &str) -> String {
    format!("kya_agent_contained{{agent=\"coder\",reason=\"{reason}\"}} 1")
}

fn grant_file(path: &str) -> Output {
    kya(&["grant", "--agent", "coder", "--file", path, "--for", "1h"])
}

fn coder_grants() -> usize {
    grants()
        .iter()
        .filter(|grant| grant["agent"] == "coder")
        .count()
}

fn reload() -> String {
    ok(&kya(&["reload"]), "kya reload")
}

fn assert_reaches_everything(fixture: &Fixture) {
    assert!(
        connect(fixture).is_ok(),
        "coder reaches its allowlisted peer: {:?}",
        connect(fixture)
    );
    assert!(
        read(fixture, ALLOWED).is_ok(),
        "coder reads the file its allow exempts"
    );
    assert!(
        read(fixture, GRANTED).is_ok(),
        "coder reads the granted file"
    );
}

fn assert_contained(fixture: &Fixture) {
    assert_eq!(
        connect(fixture),
        Err(EPERM),
        "a new coder process must not reach the peer"
    );
    assert_eq!(read(fixture, ALLOWED), Err(EPERM), "allow is suspended");
    assert_eq!(read(fixture, GRANTED), Err(EPERM), "the grant is revoked");
    // An untagged process still reaches the same peer and files.
    assert!(untagged(&["tcp-connect", PEER.0, PEER.1]).is_ok());
    assert!(untagged(&["read", ALLOWED]).is_ok());
    assert!(untagged(&["read", GRANTED]).is_ok());
}

/// One departure, start to end: contained within seconds, kept through a reload while the
/// owner is gone, released by a reload once they are back.
fn contain_and_release(fixture: &Fixture, departure: Departure) {
    let log = Path::new("/tmp/kya-test/ghost-running-agent");
    let _ = fs::remove_file(log);
    let _daemon = Daemon::start_clean(&config(fixture, "contain"));
    ok(&grant_file(GRANTED), "kya grant before the owner leaves");
    assert_reaches_everything(fixture);
    // A request waiting when the owner leaves.
    assert_eq!(read(fixture, ROOTS), Err(EPERM));
    let request = pending_id("file");
    let mut shell = running_agent(log);
    assert!(
        eventually(Duration::from_secs(20), || last_try(log).trim() == "ok"),
        "the running agent reads {ALLOWED} before: {:?}",
        last_try(log)
    );

    departure.apply(OWNER);
    assert!(
        eventually(CONTAINED_WITHIN, || coder_grants() == 0
            && last_try(log).contains("Operation not permitted")),
        "{departure:?}: within a minute coder's grants are gone ({}) and the running agent \
         is refused ({:?})",
        coder_grants(),
        last_try(log)
    );
    assert_contained(fixture);
    let shown = status();
    assert!(
        shown.contains("CONTAINED")
            && shown.contains("its owner gina")
            && shown.contains(departure.words()),
        "kya status shows the containment: {shown}"
    );
    assert!(shown.contains("kya reload"), "and the fix: {shown}");
    assert!(
        eventually(Duration::from_secs(10), || metrics()
            .contains(&contained_series(departure.reason()))),
        "the metric shows it: {}",
        metrics()
    );
    let why = grant_file(GRANTED);
    refused(&why, "kya grant for a contained agent", "its owner gina");
    refused(
        &why,
        "kya grant for a contained agent",
        "then run `kya reload`",
    );
    // Its pending request was dropped; approving it is refused with the reason too.
    assert!(
        pending().iter().all(|waiting| waiting["agent"] != "coder"),
        "coder's requests are dropped: {:?}",
        pending()
    );
    let why = kya(&["approve", &request, "--once"]);
    refused(&why, "kya approve for a contained agent", "its owner gina");

    // A reload with the owner still gone changes nothing.
    reload();
    assert_contained(fixture);
    assert!(
        status().contains("CONTAINED"),
        "still contained after a reload"
    );

    // The owner comes back: the next reload ends it (the revoked grant stays revoked).
    departure.undo(OWNER);
    reload();
    assert!(!status().contains("CONTAINED"), "released: {}", status());
    assert!(connect(fixture).is_ok(), "coder reaches its peer again");
    assert!(read(fixture, ALLOWED).is_ok(), "allow is back");
    assert_eq!(
        read(fixture, GRANTED),
        Err(EPERM),
        "the revoked grant stays revoked"
    );
    let released = format!(
        "kya_agent_contained{{agent=\"coder\",reason=\"{}\"}} 0",
        departure.reason()
    );
    assert!(
        eventually(Duration::from_secs(10), || metrics().contains(&released)),
        "the metric is back to 0: {}",
        metrics()
    );
    let _ = shell.kill();
    let _ = shell.wait();
}

/// Puts the fixture's own config back (coder owned by alice) before the test's users go, so
/// the shared daemon does not contain coder for the next test.
fn restore_config(fixture: &Fixture) {
    let _daemon = Daemon::start(&fixture.config);
}

#[test]
fn an_agent_whose_owner_is_removed_locked_or_expired_is_contained_until_a_reload() {
    let fixture = Fixture::new();
    plant();
    let _listener = TcpListener::bind(format!("{}:{}", PEER.0, PEER.1)).expect("listener");
    let _owner = User::create(OWNER);
    let _approver = User::create(APPROVER);
    for departure in [Departure::Removed, Departure::Locked, Departure::Expired] {
        contain_and_release(&fixture, departure);
    }
    restore_config(&fixture);
}

#[test]
fn containment_survives_a_daemon_restart() {
    let fixture = Fixture::new();
    plant();
    let _listener = TcpListener::bind(format!("{}:{}", PEER.0, PEER.1)).expect("listener");
    let _owner = User::create(OWNER);
    let _approver = User::create(APPROVER);
    let config = config(&fixture, "contain");
    let daemon = Daemon::start(&config);
    assert!(connect(&fixture).is_ok(), "coder reaches its peer before");
    shadow_tool("usermod", &["-L", OWNER.0]);
    assert!(
        eventually(CONTAINED_WITHIN, || status().contains("CONTAINED")),
        "contained: {}",
        status()
    );
    drop(daemon);
    let daemon = Daemon::restart(&config);
    assert!(
        status().contains("CONTAINED"),
        "still contained after a restart: {}",
        status()
    );
    assert_eq!(
        connect(&fixture),
        Err(EPERM),
        "the allowlist stays suspended"
    );
    assert_eq!(read(&fixture, ALLOWED), Err(EPERM), "allow stays suspended");
    // Only a reload with the owner living ends it.
    shadow_tool("usermod", &["-U", OWNER.0]);
    reload();
    assert!(!status().contains("CONTAINED"), "released: {}", status());
    assert!(connect(&fixture).is_ok(), "coder reaches its peer again");
    drop(daemon);
    restore_config(&fixture);
}

/// The daemons' state directory on a small filesystem of its own, for a test that fills it.
/// Dropped: the daemon that used it is stopped and the filesystem unmounted, so the next test
/// starts a daemon on the usual directory.
struct SmallStateDir {
    /// Set to stop the thread that keeps the audit trail's last page full.
    stop: Arc<AtomicBool>,
}

impl SmallStateDir {
    fn mount() -> Self {
        no_daemon();
        fs::create_dir_all(STATE_DIR).unwrap();
        shadow_tool(
            "mount",
            &["-t", "tmpfs", "-o", "size=4m", "kya-full", STATE_DIR],
        );
        Self {
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Fills the filesystem so that no audit record can be written: zeros into a file of its
    /// own until no page is left, then, every few milliseconds until dropped, the rest of the
    /// audit trail's last page with empty lines (a record would fit there otherwise, and the
    /// daemon cuts them off again after each write that failed).
    fn fill(&self) {
        let mut filler = fs::File::create(Path::new(STATE_DIR).join("filler")).unwrap();
        let chunk = vec![0_u8; 64 * 1024];
        while std::io::Write::write_all(&mut filler, &chunk).is_ok() {}
        let trail = Path::new(STATE_DIR).join("audit.jsonl");
        let stop = Arc::clone(&self.stop);
        let pad = move || {
            let len = fs::metadata(&trail).map_or(0, |meta| meta.len());
            let slack = usize::try_from((4096 - len % 4096) % 4096).unwrap();
            if slack > 0
                && let Ok(mut file) = fs::OpenOptions::new().append(true).open(&trail)
            {
                let _ = std::io::Write::write_all(&mut file, &vec![b'\n'; slack]);
            }
        };
        pad();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                pad();
                std::thread::sleep(Duration::from_millis(5));
            }
        });
    }
}

impl Drop for SmallStateDir {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        no_daemon();
        let _ = Command::new("umount").arg(STATE_DIR).output();
    }
}

/// With the state directory's filesystem full, neither the audit trail nor the snapshot can be
/// written: the containment takes effect all the same (allowlists suspended, grants out of the
/// kernel and of `kya grants`, requests refused), only without its records.
#[test]
fn containment_holds_when_its_records_cannot_be_written() {
    let fixture = Fixture::new();
    plant();
    let _listener = TcpListener::bind(format!("{}:{}", PEER.0, PEER.1)).expect("listener");
    let _owner = User::create(OWNER);
    let _approver = User::create(APPROVER);
    let state = SmallStateDir::mount();
    let _daemon = Daemon::start_clean(&config(&fixture, "contain"));
    ok(&grant_file(GRANTED), "kya grant before the owner leaves");
    assert_reaches_everything(&fixture);
    state.fill();
    shadow_tool("userdel", &[OWNER.0]);
    assert!(
        eventually(CONTAINED_WITHIN, || connect(&fixture) == Err(EPERM)),
        "coder's allowlist is suspended although nothing can be recorded: {:?}",
        connect(&fixture)
    );
    assert_contained(&fixture);
    assert_eq!(
        coder_grants(),
        0,
        "the revoked grant is gone from kya grants"
    );
    assert!(status().contains("CONTAINED"), "kya status: {}", status());
    refused(
        &grant_file(GRANTED),
        "kya grant for a contained agent",
        "its owner gina",
    );
}

/// Whether `pid` is gone or a zombie waiting to be reaped.
fn dead(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'))
    })
}

#[test]
fn on_owner_gone_stop_kills_the_agents_processes() {
    let fixture = Fixture::new();
    plant();
    let _owner = User::create(OWNER);
    let _approver = User::create(APPROVER);
    let daemon = Daemon::start(&config(&fixture, "stop"));
    let agent = Probe::start(&fixture.coder_exe, &["fork"]);
    for &pid in &agent.pids {
        daemon.assert_tagged(pid, "coder", "exe");
    }
    let bystander = Probe::plain(&["self"]);
    shadow_tool("usermod", &["-L", OWNER.0]);
    assert!(
        eventually(CONTAINED_WITHIN, || agent.pids.iter().all(|&pid| dead(pid))),
        "every process of coder is killed: {:?}",
        agent.pids
    );
    assert!(!dead(bystander.pid()), "an untagged process lives on");
    assert!(status().contains("CONTAINED"));
    // One started later is killed too: the kill is repeated every second while contained.
    let mut late = Command::new(&fixture.coder_exe)
        .arg("self")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start a later coder process");
    assert!(
        eventually(Duration::from_secs(10), || matches!(
            late.try_wait(),
            Ok(Some(status)) if status.signal() == Some(Signal::SIGKILL as i32)
        )),
        "a coder process started later is killed"
    );
    shadow_tool("usermod", &["-U", OWNER.0]);
    reload();
    assert!(!status().contains("CONTAINED"), "released: {}", status());
    restore_config(&fixture);
}

#[test]
fn a_departed_approvers_grants_are_revoked_and_roots_stay() {
    let fixture = Fixture::new();
    plant();
    let _owner = User::create(OWNER);
    let _approver = User::create(APPROVER);
    let _daemon = Daemon::start(&config(&fixture, "contain"));
    let by_dora = kya_as(
        APPROVER.1,
        &[
            "grant", "--agent", "coder", "--file", GRANTED, "--for", "1h",
        ],
    );
    ok(&by_dora, "dora grants");
    ok(&grant_file(ROOTS), "root grants");
    assert!(read(&fixture, GRANTED).is_ok(), "dora's grant works");
    assert!(read(&fixture, ROOTS).is_ok(), "root's grant works");

    shadow_tool("usermod", &["-L", APPROVER.0]);
    assert!(
        eventually(CONTAINED_WITHIN, || grants()
            .iter()
            .all(|grant| grant["approver"] != APPROVER.0)),
        "dora's grant is revoked: {:?}",
        grants()
    );
    assert_eq!(
        read(&fixture, GRANTED),
        Err(EPERM),
        "dora's grant no longer works"
    );
    assert!(read(&fixture, ROOTS).is_ok(), "root's grant stays");
    assert_eq!(
        grants()
            .iter()
            .filter(|grant| grant["approver"] == "root")
            .count(),
        1,
        "root's grant is listed"
    );
    // dora still holds a shell, but her account is locked: she approves nothing.
    let again = kya_as(
        APPROVER.1,
        &[
            "grant", "--agent", "coder", "--file", GRANTED, "--for", "1h",
        ],
    );
    refused(
        &again,
        "a grant from a locked account",
        "your account dora is locked",
    );
    assert!(
        !status().contains("CONTAINED"),
        "the agent itself is not contained"
    );
    shadow_tool("usermod", &["-U", APPROVER.0]);
}
