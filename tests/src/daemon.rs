//! The daemon under test: one shared across tests, or a test's own; its config, its control
//! socket, and the events and audit records that belong to the current test.
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use serde::Deserialize;
use serde_json::json;

use crate::{SCRATCH, SOCKET, START_TIMEOUT, STATE_DIR, bin, kya, kya_agent, require_vm};

/// One process as `kya ps --json` reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct PsEntry {
    pub pid: u32,
    pub agent: String,
    pub exe: Option<String>,
    pub matched_by: String,
    pub origin: String,
    pub threads: u32,
}

/// The daemon that tests share between them (see [`Daemon::start`]). It outlives each test;
/// the VM powers off after the last one.
static SHARED: Mutex<Option<Child>> = Mutex::new(None);

/// Events up to this sequence number belong to tests before this one (see [`events`]).
static EARLIER_EVENTS: AtomicU64 = AtomicU64::new(0);

/// Records of the audit trail before this one belong to tests before this one (see
/// [`audit_trail`]).
static EARLIER_AUDIT_RECORDS: AtomicUsize = AtomicUsize::new(0);

/// The daemon under test.
///
/// Starting `kya-agent` means verifying and attaching every kernel program, and a stopped
/// daemon's programs take the kernel seconds to detach: a start costs 5 to 20 s under
/// emulation, a config reload a fraction of a second. So tests share one daemon
/// ([`Daemon::start`]) and put their own config in force with `kya reload`; only the tests
/// that are about the daemon's own life (start-up and adoption, kill and restart, unload) start
/// one of their own ([`Daemon::start_fresh`], [`Daemon::restart`]). A test's own daemon that
/// still runs when the test ends becomes the shared one.
pub struct Daemon {
    /// The test's own daemon; `None` for the shared one.
    own: Option<Child>,
    /// Whether it reads the config file (and so can serve later tests after `kya reload`).
    reloadable: bool,
}

impl Daemon {
    /// The shared daemon, running `config` as a whole: written to the config file and put in
    /// force with `kya reload` (a reload replaces every agent, rule and allowlist, and tags
    /// running processes by the new rules), with every grant of earlier tests revoked. It
    /// starts the shared daemon, with an empty state directory, when none runs. [`events`]
    /// and [`audit_trail`] show only this test's; pending requests and counters of earlier
    /// tests remain (see [`Daemon::start_clean`]).
    #[must_use]
    pub fn start(config: &str) -> Self {
        let daemon = Self::shared(config);
        // Straight to the control socket, as `kya grants` and `kya revoke` would ask: one
        // process start less per grant.
        for grant in control(&json!({ "request": "grants" }))["grants"]
            .as_array()
            .expect("grants")
        {
            let answer = control(&json!({ "request": "revoke", "grant": grant["id"] }));
            assert_eq!(answer["response"], "revoked", "revoking {grant}: {answer}");
        }
        mark_earlier_records();
        daemon
    }

    /// Like [`Daemon::start`], and no pending request of an earlier test remains either (each
    /// is denied): for tests that count requests or metrics.
    #[must_use]
    pub fn start_clean(config: &str) -> Self {
        let daemon = Self::start(config);
        let pending = control(&json!({ "request": "pending" }));
        for request in pending["requests"].as_array().expect("requests") {
            let answer = control(&json!({ "request": "deny", "id": request["id"] }));
            assert_eq!(answer["response"], "denied", "denying {request}: {answer}");
        }
        mark_earlier_records();
        daemon
    }

    fn shared(config: &str) -> Self {
        require_vm();
        write_config(config);
        let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        let running = shared
            .as_mut()
            .is_some_and(|child| child.try_wait().ok().flatten().is_none());
        if running {
            let reload = kya(&["reload"]);
            assert!(
                reload.status.success(),
                "kya reload of the test config failed: {}{}",
                String::from_utf8_lossy(&reload.stdout),
                String::from_utf8_lossy(&reload.stderr)
            );
        } else {
            *shared = Some(spawn_fresh(&config_args()));
        }
        Self {
            own: None,
            reloadable: true,
        }
    }

    /// A daemon of the test's own, running `config` with an empty state directory and
    /// nothing pinned before it; the shared daemon is stopped first.
    #[must_use]
    pub fn start_fresh(config: &str) -> Self {
        require_vm();
        write_config(config);
        stop_shared();
        Self::own(spawn_fresh(&config_args()), true)
    }

    /// Like `start_fresh`, with the daemon's log (stderr, at level `warn`) written to `log`
    /// instead of the test's output, for a test that checks what the log says.
    #[must_use]
    pub fn start_fresh_logging_to(config: &str, log: &Path) -> Self {
        require_vm();
        write_config(config);
        stop_shared();
        let _ = std::fs::remove_dir_all(STATE_DIR);
        unload();
        let log = std::fs::File::create(log).expect("create the daemon's log file");
        Self::own(spawn_with(&config_args(), Stdio::from(log)), true)
    }

    /// Like `start_fresh`, but keeps the state directory and the pins as the last daemon left
    /// them (a restart after `kill` or `stop_keeping_pins`).
    #[must_use]
    pub fn restart(config: &str) -> Self {
        require_vm();
        write_config(config);
        stop_shared();
        Self::own(spawn(&config_args()), true)
    }

    /// Starts `kya-agent ARGS --state-dir STATE_DIR` as the test's own daemon, with nothing
    /// pinned before it; returns once `kya ps` answers.
    #[must_use]
    pub fn start_with_args(args: &[&str]) -> Self {
        require_vm();
        stop_shared();
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        Self::own(spawn_fresh(&args), false)
    }

    fn own(child: Child, reloadable: bool) -> Self {
        mark_earlier_records();
        Self {
            own: Some(child),
            reloadable,
        }
    }

    /// The tagged processes, from `kya ps --json`.
    #[must_use]
    pub fn ps(&self) -> Vec<PsEntry> {
        let output = kya(&["ps", "--json"]);
        assert!(
            output.status.success(),
            "kya ps failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("kya ps --json prints JSON")
    }

    /// The entry for `pid`, if it is tagged.
    #[must_use]
    pub fn tagged(&self, pid: u32) -> Option<PsEntry> {
        self.ps().into_iter().find(|entry| entry.pid == pid)
    }

    /// Asserts that `pid` is tagged as `agent`, matched by `matched_by`, and returns its entry.
    pub fn assert_tagged(&self, pid: u32, agent: &str, matched_by: &str) -> PsEntry {
        let entry = self.tagged(pid).unwrap_or_else(|| {
            panic!(
                "expected pid {pid} to be tagged as {agent}; tagged now: {:?}",
                self.ps()
            )
        });
        assert_eq!(entry.agent, agent, "agent of pid {pid}: {entry:?}");
        assert_eq!(entry.matched_by, matched_by, "rule of pid {pid}: {entry:?}");
        entry
    }

    /// Asserts that `pid` is not tagged.
    pub fn assert_untagged(&self, pid: u32) {
        if let Some(entry) = self.tagged(pid) {
            panic!("expected pid {pid} to be untagged, but it is: {entry:?}");
        }
    }

    /// The daemon's process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        match &self.own {
            Some(child) => child.id(),
            None => SHARED
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .expect("the shared daemon runs")
                .id(),
        }
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.pid()).expect("pid"));
        nix::sys::signal::kill(pid, signal).expect("signal kya-agent");
    }

    /// Kills the daemon with SIGKILL (no clean-up at all) and reaps it. Its pinned programs
    /// stay attached, enforcing, for a later `restart` to take over.
    pub fn kill(mut self) {
        let mut child = self.take_child();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Stops the daemon with SIGTERM, leaving its pinned programs enforcing.
    pub fn stop_keeping_pins(mut self) -> std::process::ExitStatus {
        terminate(self.take_child())
    }

    /// Stops the daemon with SIGTERM, then unloads what it pinned, and returns its exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let status = terminate(self.take_child());
        unload();
        status
    }

    /// The daemon's process, which the caller ends; this handle then has none to stop.
    fn take_child(&mut self) -> Child {
        self.own.take().unwrap_or_else(|| {
            SHARED
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .expect("the shared daemon runs")
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.own.take() {
            let running = child.try_wait().ok().flatten().is_none();
            if running && self.reloadable && !thread::panicking() {
                // Saves the next test a start: it reloads its own config into this daemon.
                *SHARED.lock().unwrap_or_else(PoisonError::into_inner) = Some(child);
                return;
            }
            if terminate(child).code().is_none() {
                eprintln!("kya-agent did not stop on SIGTERM and was killed");
            }
            // The next test starts from a kernel without kya. (No assertion: this may run
            // while a test is already panicking.)
            let _ = kya_agent(&["unload"]);
        } else if thread::panicking() {
            // A failed test may have left the shared daemon in any state (stopped, its
            // config half-written): the next test starts a new one.
            stop_shared();
        }
    }
}

/// Writes the config file that the daemons under test read (`--config`, and `kya reload`).
fn write_config(config: &str) {
    scratch_root();
    std::fs::write(config_path(), config).expect("write config");
}

/// Creates `SCRATCH` open to every user (tests switch to other uids inside it) before anything
/// else can: the daemon creates its state directory there with a private umask.
pub(crate) fn scratch_root() {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(SCRATCH).expect("create the scratch directory");
    std::fs::set_permissions(SCRATCH, std::fs::Permissions::from_mode(0o755))
        .expect("open the scratch directory to every user");
}

/// The file the daemons under test read their config from.
#[must_use]
pub fn config_path() -> PathBuf {
    Path::new(SCRATCH).join("kya.toml")
}

fn config_args() -> Vec<String> {
    vec![
        "--config".to_owned(),
        config_path().to_str().expect("utf-8 path").to_owned(),
    ]
}

/// Sends one request to the daemon's control socket (as root, outside any agent) and returns
/// its answer: what the `kya` commands do, without starting a process each time.
pub fn control(request: &serde_json::Value) -> serde_json::Value {
    use std::io::{Read as _, Write as _};
    let mut stream = std::os::unix::net::UnixStream::connect(SOCKET).expect("kya-agent answers");
    stream
        .write_all(format!("{request}\n").as_bytes())
        .expect("send the request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    serde_json::from_str(&answer).unwrap_or_else(|_| panic!("{request}: not JSON: {answer}"))
}

/// From now on, [`events`] and [`audit_trail`] show only what comes next.
fn mark_earlier_records() {
    EARLIER_EVENTS.store(last_event_seq(), Ordering::SeqCst);
    EARLIER_AUDIT_RECORDS.store(audit_records().len(), Ordering::SeqCst);
}

/// The file where the daemons under test keep their audit trail.
fn audit_path() -> PathBuf {
    Path::new(STATE_DIR).join("audit.jsonl")
}

/// Every complete record of the audit trail (none while it does not exist). The daemon may be
/// appending a record while this reads: a last line without its newline is not finished yet.
fn audit_records() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(audit_path()).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|line| serde_json::from_str(line).expect("the audit trail holds JSON lines"))
        .collect()
}

/// The audit trail's records since this test started its daemon or put its config in force.
#[must_use]
pub fn audit_trail() -> Vec<serde_json::Value> {
    audit_records()
        .into_iter()
        .skip(EARLIER_AUDIT_RECORDS.load(Ordering::SeqCst))
        .collect()
}

/// Ends enforcement before a test that needs a kernel without kya (processes started before
/// any daemon): stops the shared daemon, if one runs, and unloads what it pinned.
pub fn no_daemon() {
    stop_shared();
}

/// Stops the shared daemon, if one runs, and unloads what it pinned.
fn stop_shared() {
    let child = SHARED.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(child) = child {
        terminate(child);
        unload();
    }
}

/// Starts `kya-agent ARGS` with an empty state directory and nothing pinned.
fn spawn_fresh(args: &[String]) -> Child {
    let _ = std::fs::remove_dir_all(STATE_DIR);
    unload();
    spawn(args)
}

/// Starts `kya-agent ARGS --state-dir STATE_DIR`; returns once `kya ps` answers.
fn spawn(args: &[String]) -> Child {
    spawn_with(args, Stdio::inherit())
}

/// Like [`spawn`], with the daemon's stderr (its log) going to `log`.
fn spawn_with(args: &[String], log: Stdio) -> Child {
    scratch_root();
    let mut child = Command::new(bin("kya-agent"))
        .args(args)
        .args(["--state-dir", STATE_DIR])
        // Warnings and errors only: the test output stays readable.
        .env("KYA_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn kya-agent");
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("poll kya-agent") {
            panic!("kya-agent exited during start-up with {status}");
        }
        if kya(&["ps", "--json"]).status.success() {
            // Each daemon process numbers its events from 1.
            EARLIER_EVENTS.store(0, Ordering::SeqCst);
            return child;
        }
        if Instant::now() >= deadline {
            // Never leave a half-started daemon behind for the next test.
            let _ = child.kill();
            let _ = child.wait();
            panic!("kya-agent did not answer on {SOCKET} within {START_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Stops a daemon with SIGTERM (SIGKILL after 30 s) and returns how it ended.
fn terminate(mut child: Child) -> std::process::ExitStatus {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("poll kya-agent") {
            return status;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().expect("reap kya-agent")
}

/// `kya-agent unload`: removes whatever kya pinned (nothing, if nothing is).
pub fn unload() {
    let output = kya_agent(&["unload"]);
    assert!(
        output.status.success(),
        "kya-agent unload failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// How many loaded BPF programs are called `name` (kya names each after its hook).
#[must_use]
pub fn programs_named(name: &str) -> usize {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter(|program| program.name_as_str() == Some(name))
        .count()
}

/// Every denial the daemon reported since this test started it or put its config in force,
/// as `kya events --json` shows them.
pub fn events() -> Vec<serde_json::Value> {
    events_after(EARLIER_EVENTS.load(Ordering::SeqCst))
}

/// The denials after sequence number `after`, asked of the control socket directly: `kya
/// events` always lists every kept event (up to 4,096), which costs seconds under emulation.
fn events_after(after: u64) -> Vec<serde_json::Value> {
    let answer = control(&json!({ "request": "events", "after": after }));
    answer["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in the answer: {answer}"))
        .clone()
}

/// The sequence number of the newest event the daemon keeps (0: none yet).
fn last_event_seq() -> u64 {
    let known = EARLIER_EVENTS.load(Ordering::SeqCst);
    events_after(known)
        .iter()
        .filter_map(|event| event["seq"].as_u64())
        .max()
        .unwrap_or(known)
}
