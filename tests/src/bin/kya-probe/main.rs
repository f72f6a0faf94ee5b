//! `kya-probe SCENARIO [ARGS...]`: a test program that creates processes in a given way and
//! reports them, so the integration tests can check which ones the kernel tagged; or performs
//! one operation on a file or process and reports what the kernel answered (`ops`).
//!
//! A scenario prints `pid N` for every process the test should check, then `ready`, and keeps
//! every one of them alive until its standard input closes (or 120 s pass). An operation prints
//! `result ok ...` or `result errno N` and exits.
mod cmdlines;
mod facilities;
mod handles;
mod keys;
mod mounts;
mod net;
mod ops;
mod terminals;
mod unix;

use std::{
    ffi::CString,
    io::{Read as _, Write as _},
    process::exit,
    time::Duration,
};

use nix::{
    sched::{CloneFlags, unshare},
    sys::wait::waitpid,
    unistd::{ForkResult, Pid, Uid, execv, fork, pipe, setsid, setuid},
};

/// Longest a probe lives, so a failed test never leaves processes behind for long.
const LIFETIME: Duration = Duration::from_mins(2);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((scenario, rest)) = args.split_first() else {
        usage();
    };
    if let Some(outcome) = operation(scenario, rest) {
        match outcome {
            Ok(detail) => println!("result ok {detail}"),
            Err(errno) => println!("result errno {}", errno as i32),
        }
        return;
    }
    match scenario.as_str() {
        // This process itself.
        "self" => report_and_wait(&[std::process::id()]),
        // A forked child (and this process).
        "fork" => {
            let child = spawn_sleeper(|| {});
            report_and_wait(&[std::process::id(), child]);
        }
        // A second thread of this process (the test checks the thread count).
        "thread" => {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                tx.send(nix::unistd::gettid().as_raw()).expect("report tid");
                std::thread::sleep(LIFETIME);
            });
            rx.recv().expect("thread started");
            report_and_wait(&[std::process::id()]);
        }
        // A grandchild whose parent exits at once (it is reparented to init).
        "double-fork" => {
            let grandchild = through_intermediate(|| {});
            report_and_wait(&[grandchild]);
        }
        // A child that starts its own session.
        "setsid" => {
            let child = spawn_sleeper(|| {
                setsid().expect("setsid");
            });
            report_and_wait(&[child]);
        }
        // A classic daemon: fork, setsid, fork again, chdir /, stdio to /dev/null.
        "daemonize" => {
            let daemon = through_intermediate(|| {
                setsid().expect("setsid");
            });
            report_and_wait(&[daemon]);
        }
        // A process in new mount, UTS, IPC, network and pid namespaces: an intermediate child
        // unshares them (a process that unshared its pid namespace can no longer start
        // threads) and forks the final process, pid 1 of the new pid namespace.
        "namespaces" => {
            let init = through_intermediate(|| {
                unshare(
                    CloneFlags::CLONE_NEWNS
                        | CloneFlags::CLONE_NEWUTS
                        | CloneFlags::CLONE_NEWIPC
                        | CloneFlags::CLONE_NEWNET
                        | CloneFlags::CLONE_NEWPID,
                )
                .expect("unshare");
            });
            report_and_wait(&[init]);
        }
        // Change the real and effective uid, then wait.
        "setuid" => {
            let uid: u32 = parse(rest.first());
            setuid(Uid::from_raw(uid)).expect("setuid");
            report_and_wait(&[std::process::id()]);
        }
        // Move this process into a cgroup (path below /sys/fs/cgroup), then wait.
        "cgroup" => {
            let path = rest.first().unwrap_or_else(|| usage());
            let procs = format!(
                "/sys/fs/cgroup/{}/cgroup.procs",
                path.trim_start_matches('/')
            );
            std::fs::write(&procs, std::process::id().to_string()).expect("join cgroup");
            report_and_wait(&[std::process::id()]);
        }
        // A child created directly inside a cgroup (clone3 with CLONE_INTO_CGROUP), which
        // never passes through a cgroup migration.
        "clone-into-cgroup" => {
            let path = rest.first().unwrap_or_else(|| usage());
            let dir =
                std::fs::File::open(format!("/sys/fs/cgroup/{}", path.trim_start_matches('/')))
                    .expect("open cgroup directory");
            let child = clone_into_cgroup(&dir);
            report_and_wait(&[child]);
        }
        // A deputy serving at ADDR (a path or @name), of KIND (stream, seqpacket or dgram):
        // it copies a file for whoever asks (see `unix`).
        "unix-deputy" => {
            let [address, kind] = rest else { usage() };
            unix::deputy(address, kind);
            report_and_wait(&[std::process::id()]);
        }
        // Optionally drop to a uid, then execute another program with arguments.
        "exec" => {
            let (program, program_args) = rest.split_first().unwrap_or_else(|| usage());
            exec(program, program_args);
        }
        "setuid-exec" => {
            let uid: u32 = parse(rest.first());
            setuid(Uid::from_raw(uid)).expect("setuid");
            let (program, program_args) = rest[1..].split_first().unwrap_or_else(|| usage());
            exec(program, program_args);
        }
        _ => usage(),
    }
}

/// Runs the one-shot operation `name` with `args`; `None` when there is no such operation.
fn operation(name: &str, args: &[String]) -> Option<Result<String, nix::errno::Errno>> {
    ops::run(name, args)
        .or_else(|| net::run(name, args))
        .or_else(|| unix::run(name, args))
        .or_else(|| handles::run(name, args))
        .or_else(|| mounts::run(name, args))
        .or_else(|| facilities::run(name, args))
        .or_else(|| terminals::run(name, args))
        .or_else(|| cmdlines::run(name, args))
        .or_else(|| keys::run(name, args))
}

fn usage() -> ! {
    eprintln!(
        "usage: kya-probe self|fork|thread|double-fork|setsid|daemonize|namespaces|setuid UID|\
         cgroup PATH|clone-into-cgroup PATH|unix-deputy ADDR KIND|exec PROGRAM [ARGS...]|setuid-exec UID PROGRAM [ARGS...]"
    );
    exit(2)
}

fn parse(value: Option<&String>) -> u32 {
    value
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| usage())
}

fn as_u32(pid: i32) -> u32 {
    u32::try_from(pid).expect("pids are positive")
}

fn exec(program: &str, args: &[String]) -> ! {
    let argv: Vec<CString> = std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(|arg| CString::new(arg).expect("no NUL in arguments"))
        .collect();
    let error = execv(&argv[0], &argv).unwrap_err();
    eprintln!("kya-probe: exec {program}: {error}");
    exit(127)
}

/// Forks a child that runs `prepare` and then sleeps until this process's stdin closes.
fn spawn_sleeper(prepare: impl FnOnce()) -> u32 {
    // SAFETY: the child only calls async-signal-safe code before sleeping or exiting.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            prepare();
            std::thread::sleep(LIFETIME);
            exit(0)
        }
        ForkResult::Parent { child } => as_u32(child.as_raw()),
    }
}

/// `struct clone_args` of `clone3(2)`, up to the `cgroup` member.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` from `linux/sched.h`.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Like `spawn_sleeper`, but the child starts life in the cgroup `dir`.
fn clone_into_cgroup(dir: &std::fs::File) -> u32 {
    use std::os::fd::AsRawFd as _;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: u64::try_from(libc::SIGCHLD).expect("signal number"),
        cgroup: u64::try_from(dir.as_raw_fd()).expect("open fd"),
        ..CloneArgs::default()
    };
    // SAFETY: a fork-like clone3 (no shared memory or stack); the child only sleeps and exits.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            std::ptr::from_ref(&args),
            size_of::<CloneArgs>(),
        )
    };
    match pid {
        0 => {
            std::thread::sleep(LIFETIME);
            exit(0)
        }
        pid if pid < 0 => panic!("clone3: {}", std::io::Error::last_os_error()),
        pid => u32::try_from(pid).expect("pid"),
    }
}

/// Forks an intermediate child that runs `prepare`, forks the final process and exits; returns
/// the final process's pid (sent back over a pipe).
fn through_intermediate(prepare: impl FnOnce()) -> u32 {
    let (read_end, write_end) = pipe().expect("pipe");
    // SAFETY: as in spawn_sleeper.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            drop(read_end);
            prepare();
            // SAFETY: as above.
            match unsafe { fork() }.expect("fork") {
                ForkResult::Child => {
                    let _ = std::env::set_current_dir("/");
                    std::thread::sleep(LIFETIME);
                    exit(0)
                }
                ForkResult::Parent { child } => {
                    let mut pipe = std::fs::File::from(write_end);
                    pipe.write_all(&child.as_raw().to_ne_bytes())
                        .expect("report");
                    exit(0)
                }
            }
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut bytes = [0; 4];
            std::fs::File::from(read_end)
                .read_exact(&mut bytes)
                .expect("final pid");
            waitpid(child, None).expect("reap intermediate");
            as_u32(i32::from_ne_bytes(bytes))
        }
    }
}

/// Prints the pids, then waits for stdin to close and kills them.
fn report_and_wait(pids: &[u32]) -> ! {
    let mut out = std::io::stdout().lock();
    for pid in pids {
        writeln!(out, "pid {pid}").expect("stdout");
    }
    writeln!(out, "ready").expect("stdout");
    out.flush().expect("stdout");
    drop(out);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        let _ = done_tx.send(());
    });
    let _ = done_rx.recv_timeout(LIFETIME);
    for &pid in pids {
        if pid != std::process::id() {
            let _ = nix::sys::signal::kill(
                Pid::from_raw(i32::try_from(pid).expect("pid")),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    exit(0)
}
