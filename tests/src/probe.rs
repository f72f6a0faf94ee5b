//! `kya-probe`: scenarios that create processes, and one-shot operations whose errno the
//! tests check, run as an agent or untagged.
use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Child, ChildStdin, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::bin;

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

/// What a one-shot `kya-probe` operation reported: `Ok(detail)` or `Err(errno)`.
pub type OpResult = Result<String, i32>;

/// `EPERM`, what every kya denial returns.
pub const EPERM: i32 = 1;

/// Runs `kya-probe OP ARGS` as `agent` (through `kya run`) or untagged (`None`).
pub fn op(agent: Option<&str>, args: &[&str]) -> OpResult {
    op_command(op_invocation(agent, args))
}

/// What `kya-probe read-each` reported for each path: `Ok(())` or `Err(errno)`, in order.
#[must_use]
pub fn read_each(result: &OpResult, paths: &[&str]) -> Vec<Result<(), i32>> {
    let detail = result
        .as_ref()
        .unwrap_or_else(|errno| panic!("read-each itself failed with errno {errno}"));
    let outcomes: Vec<Result<(), i32>> = detail
        .split('|')
        .map(|case| {
            let (_, outcome) = case.rsplit_once('=').expect("PATH=OUTCOME");
            match outcome {
                "ok" => Ok(()),
                errno => Err(errno.parse().expect("numeric errno")),
            }
        })
        .collect();
    assert_eq!(
        outcomes.len(),
        paths.len(),
        "one outcome per path: {detail}"
    );
    outcomes
}

/// Runs `kya-probe OP ARGS` as the user `uid` (and group `uid`), with `HOME` set to `home`:
/// tagged when a `match.uid` rule names `uid` (the exec of a process whose real uid is it).
pub fn op_as_uid(uid: u32, home: &str, args: &[&str]) -> OpResult {
    use std::os::unix::process::CommandExt as _;
    let mut command = op_invocation(None, args);
    command
        .uid(uid)
        .gid(uid)
        .env("HOME", home)
        .current_dir(home);
    op_command(command)
}

/// Like [`op`], with `file` open as descriptor 3 in the process (inherited across `kya run`,
/// so opened before the process was tagged).
pub fn op_with_fd(agent: Option<&str>, file: &std::fs::File, args: &[&str]) -> OpResult {
    op_command(with_fd_3(op_invocation(agent, args), file))
}

/// Like [`op_exe`], with `file` open as descriptor 3 in the process (opened by the test).
pub fn op_exe_with_fd(exe: &Path, file: &std::fs::File, args: &[&str]) -> OpResult {
    let mut command = Command::new(exe);
    command.args(args);
    op_command(with_fd_3(command, file))
}

/// `command`, with `file` open as descriptor 3 in the process it starts.
fn with_fd_3(mut command: Command, file: &std::fs::File) -> Command {
    use std::os::{fd::AsRawFd as _, unix::process::CommandExt as _};
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
    command
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

/// Like [`op_exe`], run as the user `uid` (and group `uid`) from `/`: an agent of `EXE`'s
/// `match.exe` rule running as that user.
pub fn op_exe_as_uid(exe: &Path, uid: u32, args: &[&str]) -> OpResult {
    use std::os::unix::process::CommandExt as _;
    let mut command = Command::new(exe);
    command.args(args).uid(uid).gid(uid).current_dir("/");
    op_command(command)
}

/// Like [`op_exe`], with the process placed in `cgroup` (below the cgroup2 mount) before it
/// executes `EXE`, so it is tagged there.
pub fn op_exe_in_cgroup(exe: &Path, cgroup: &str, args: &[&str]) -> OpResult {
    op_command(in_cgroup(exe, cgroup, args))
}

fn in_cgroup(exe: &Path, cgroup: &str, args: &[&str]) -> Command {
    use std::os::unix::process::CommandExt as _;
    let procs = std::ffi::CString::new(
        crate::cgroup_dir(cgroup)
            .join("cgroup.procs")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .expect("no NUL in a cgroup path");
    let mut command = Command::new(exe);
    command.args(args);
    // SAFETY: open, write and close are async-signal-safe and nothing is
    // allocated; this runs in the child between fork and exec. "0" is the writing process.
    unsafe {
        command.pre_exec(move || {
            let procs_fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if procs_fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let written = libc::write(procs_fd, b"0".as_ptr().cast(), 1);
            libc::close(procs_fd);
            if written != 1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
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
