//! Harness for kya's integration tests: start the real daemon with a config, run real probe
//! processes, and read what the kernel tagged through the real `kya` CLI.
//!
//! These tests load BPF LSM programs, so they run inside the test VM (`cargo xtask test`).
//! Outside it they fail with a message saying so: a kernel test never silently passes.
use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Output, Stdio},
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use serde::Deserialize;
use serde_json::json;

/// Where the daemon under test serves its control socket.
pub const SOCKET: &str = "/run/kya/kya.sock";
/// Scratch directory for configs and test executables.
pub const SCRATCH: &str = "/tmp/kya-test";
/// The daemon's state directory (grants, requests, audit trail) in the tests. A new daemon
/// starts with it empty; `Daemon::restart` keeps it.
pub const STATE_DIR: &str = "/tmp/kya-test/state";
/// How long the daemon may take to start enforcing under emulation (the verifier alone takes
/// tens of seconds there).
const START_TIMEOUT: Duration = Duration::from_mins(3);

/// Panics unless running where kernel tests can run.
pub fn require_vm() {
    assert!(
        std::env::var_os("KYA_IN_VM").is_some(),
        "kya's integration tests load BPF LSM programs into the running kernel; run them with \
         `cargo xtask test`, which boots them in a VM"
    );
}

/// Path of a binary installed in the VM (`kya`, `kya-agent`, `kya-probe`).
#[must_use]
pub fn bin(name: &str) -> PathBuf {
    let path = Path::new("/usr/local/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing from the VM image",
        path.display()
    );
    path
}

/// A fresh scratch directory for one test.
#[must_use]
pub fn scratch(test: &str) -> PathBuf {
    scratch_root();
    let dir = Path::new(SCRATCH).join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch directory");
    dir
}

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
fn scratch_root() {
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
fn control(request: &serde_json::Value) -> serde_json::Value {
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

/// Every record of the audit trail (none while it does not exist).
fn audit_records() -> Vec<serde_json::Value> {
    std::fs::read_to_string(audit_path())
        .unwrap_or_default()
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
    scratch_root();
    let mut child = Command::new(bin("kya-agent"))
        .args(args)
        .args(["--state-dir", STATE_DIR])
        // Warnings and errors only: the test output stays readable.
        .env("KYA_LOG", "warn")
        .stdin(Stdio::null())
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

/// Runs `kya ARGS` and returns its output.
#[must_use]
pub fn kya(args: &[&str]) -> Output {
    Command::new(bin("kya"))
        .args(args)
        .output()
        .expect("run kya")
}

/// Runs `kya-agent ARGS` and returns its output.
#[must_use]
pub fn kya_agent(args: &[&str]) -> Output {
    Command::new(bin("kya-agent"))
        .args(args)
        .output()
        .expect("run kya-agent")
}

/// A running probe scenario and the processes it reported. Dropping it ends them all.
pub struct Probe {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The pids the scenario reported, in order.
    pub pids: Vec<u32>,
}

impl Probe {
    /// Runs `program ARGS` (normally `kya-probe`, possibly through `kya run` or a link) and
    /// waits for it to report its processes.
    #[must_use]
    pub fn start(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Self {
        let mut command = Command::new(program.as_ref());
        command.args(args);
        Self::spawn(command)
    }

    /// Runs `kya-probe ARGS`.
    #[must_use]
    pub fn plain(args: &[&str]) -> Self {
        Self::start(bin("kya-probe"), args)
    }

    /// Runs `kya run --agent AGENT -- kya-probe ARGS`.
    #[must_use]
    pub fn as_agent(agent: &str, args: &[&str]) -> Self {
        let probe = bin("kya-probe");
        let mut all = vec![
            "run",
            "--agent",
            agent,
            "--",
            probe.to_str().expect("utf-8"),
        ];
        all.extend_from_slice(args);
        Self::start(bin("kya"), &all)
    }

    /// Spawns a prepared command that runs a probe scenario.
    #[must_use]
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn probe");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("probe stdout");
        let mut pids = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("read probe output");
            if line == "ready" {
                return Self { child, stdin, pids };
            }
            if let Some(pid) = line.strip_prefix("pid ") {
                pids.push(pid.parse().expect("probe prints numeric pids"));
            }
        }
        let status = child.wait().expect("reap probe");
        panic!("probe {command:?} exited with {status} before reporting ready");
    }

    /// The first reported pid.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pids[0]
    }

    /// The pid of the process the test started (which reported the others).
    #[must_use]
    pub fn launcher_pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        // Closing stdin tells the probe to kill what it started and exit.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `condition` holds, up to `timeout`.
pub fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    condition()
}

/// Executables and cgroups shared by the tests, and the config that names them.
pub struct Fixture {
    /// A copy of `kya-probe` named in agent `coder`'s `match.exe`.
    pub coder_exe: PathBuf,
    /// A copy of `kya-probe` named in agent `ops`'s `match.exe`.
    pub ops_exe: PathBuf,
    pub config: String,
}

/// The cgroup (below the cgroup2 mount) named in agent `coder`'s `match.cgroup`.
pub const CODER_CGROUP: &str = "/agents/coder";
/// The uid named in agent `coder`'s `match.uid`.
pub const CODER_UID: u32 = 1001;

impl Fixture {
    /// Creates the executables and cgroups and returns the config naming them.
    #[must_use]
    pub fn new() -> Self {
        require_vm();
        let bin_dir = Path::new(SCRATCH).join("bin");
        std::fs::create_dir_all(&bin_dir).expect("scratch bin");
        let coder_exe = bin_dir.join("coder-agent");
        let ops_exe = bin_dir.join("ops-agent");
        for exe in [&coder_exe, &ops_exe] {
            if !exe.exists() {
                std::fs::copy(bin("kya-probe"), exe).expect("copy probe");
            }
        }
        for cgroup in [CODER_CGROUP, "/agents/other"] {
            std::fs::create_dir_all(cgroup_dir(cgroup)).expect("create cgroup");
        }
        let config = format!(
            r#"
[[agents]]
name = "coder"
owner = "alice"
[agents.match]
exe = ["{coder}"]
cgroup = ["{CODER_CGROUP}"]
uid = [{CODER_UID}]

[[agents]]
name = "ops"
owner = "bob"
[agents.match]
exe = ["{ops}"]
"#,
            coder = coder_exe.display(),
            ops = ops_exe.display(),
        );
        Self {
            coder_exe,
            ops_exe,
            config,
        }
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

/// The directory of a cgroup given relative to the cgroup2 mount.
#[must_use]
pub fn cgroup_dir(cgroup: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup").join(cgroup.trim_start_matches('/'))
}

/// What a one-shot `kya-probe` operation reported: `Ok(detail)` or `Err(errno)`.
pub type OpResult = Result<String, i32>;

/// `EPERM`, what every kya denial returns.
pub const EPERM: i32 = 1;

/// Runs `kya-probe OP ARGS` as `agent` (through `kya run`) or untagged (`None`).
pub fn op(agent: Option<&str>, args: &[&str]) -> OpResult {
    op_command(op_invocation(agent, args))
}

/// Like [`op`], with `file` open as descriptor 3 in the process (inherited across `kya run`,
/// so opened before the process was tagged).
pub fn op_with_fd(agent: Option<&str>, file: &std::fs::File, args: &[&str]) -> OpResult {
    use std::os::{fd::AsRawFd as _, unix::process::CommandExt as _};
    let mut command = op_invocation(agent, args);
    let fd = file.as_raw_fd();
    // SAFETY: dup2 is async-signal-safe; it runs in the child between fork and exec.
    unsafe {
        command.pre_exec(move || {
            // dup2 onto itself would keep close-on-exec; clear it instead.
            let result = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if result < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    op_command(command)
}

/// Where [`op_with_fds`] parks descriptors on their way to 3, 4, ...: above any the test
/// process holds, below the usual limit of 1,024.
const SPARE_FDS: i32 = 512;

/// Like [`op_with_fd`], with `files` open as descriptors 3, 4, ... in that order.
pub fn op_with_fds(agent: Option<&str>, files: &[std::fs::File], args: &[&str]) -> OpResult {
    use std::os::{fd::AsRawFd as _, unix::process::CommandExt as _};
    let mut command = op_invocation(agent, args);
    let fds: Vec<i32> = files.iter().map(std::fs::File::as_raw_fd).collect();
    // SAFETY: fcntl, dup2 and close are async-signal-safe, and the closure allocates nothing;
    // it runs in the child between fork and exec.
    unsafe {
        command.pre_exec(move || {
            // Out of the way first, so that no descriptor is overwritten before it is moved.
            for (spare, &fd) in (SPARE_FDS..).zip(fds.iter()) {
                if libc::fcntl(fd, libc::F_DUPFD, spare) != spare {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (from, to) in (SPARE_FDS..).zip(3..).take(fds.len()) {
                if libc::dup2(from, to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(from);
            }
            Ok(())
        });
    }
    op_command(command)
}

/// Runs `EXE OP ARGS` directly, where `EXE` is a copy of `kya-probe` that a `match.exe` rule
/// tags (needs no daemon, unlike `kya run`: works while the daemon is stopped).
pub fn op_exe(exe: &Path, args: &[&str]) -> OpResult {
    let mut command = Command::new(exe);
    command.args(args);
    op_command(command)
}

/// Runs `kya ARGS` as user `uid` (and its group of the same number).
#[must_use]
pub fn kya_as(uid: u32, args: &[&str]) -> Output {
    use std::os::unix::process::CommandExt as _;
    Command::new(bin("kya"))
        .args(args)
        .uid(uid)
        .gid(uid)
        .output()
        .expect("run kya")
}

fn op_invocation(agent: Option<&str>, args: &[&str]) -> Command {
    let probe = bin("kya-probe");
    if let Some(agent) = agent {
        let mut command = Command::new(bin("kya"));
        command
            .args(["run", "--agent", agent, "--"])
            .arg(probe)
            .args(args);
        command
    } else {
        let mut command = Command::new(probe);
        command.args(args);
        command
    }
}

fn op_command(mut command: Command) -> OpResult {
    let output = command.output().expect("run kya-probe");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("result "))
        .unwrap_or_else(|| {
            panic!(
                "{command:?} reported no result ({}): {stdout} {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
        });
    if let Some(errno) = line.strip_prefix("errno ") {
        Err(errno.parse().expect("numeric errno"))
    } else {
        Ok(line.trim_start_matches("ok").trim().to_owned())
    }
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

/// Serves `file` once over a Unix socket at `path` (SCM_RIGHTS), from a background thread.
pub fn serve_descriptor(path: &Path, file: std::fs::File) -> thread::JoinHandle<()> {
    use std::os::{fd::AsRawFd as _, unix::net::UnixListener};
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).expect("bind descriptor socket");
    thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let fds = [file.as_raw_fd()];
        let control = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
        nix::sys::socket::sendmsg::<()>(
            stream.as_raw_fd(),
            &[std::io::IoSlice::new(b"x")],
            &control,
            nix::sys::socket::MsgFlags::empty(),
            None,
        )
        .expect("send descriptor");
    })
}
