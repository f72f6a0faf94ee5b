//! The measured loops. Each runs in its own process (`kya-bench worker ...`), untagged or
//! tagged through `kya run`, and reports nanoseconds per operation on three clocks; the
//! process's own start-up is outside the timed loop.
//!
//! - `thread`: the worker thread's own CPU time (`CLOCK_THREAD_CPUTIME_ID`), kernel time
//!   included: the system calls and every BPF program they run, and none of what other tasks
//!   (the daemon, kernel threads, the TCP listener) ran meanwhile.
//! - `thread_children`: that plus the CPU time of the children it reaped (`RUSAGE_CHILDREN`),
//!   for fork+exec+wait, where the child's exec and exit are the work.
//! - `monotonic`: `CLOCK_MONOTONIC`, everything that ran while the loop ran.
use std::{
    ffi::CString,
    net::{SocketAddr, TcpStream, UdpSocket},
    os::fd::AsRawFd as _,
    process::Command,
    time::Instant,
};

/// The clocks read around a loop, in nanoseconds.
#[derive(Clone, Copy)]
struct Clocks {
    monotonic: u64,
    thread: u64,
    children: u64,
}

impl Clocks {
    fn now() -> Self {
        let mut usage: libc::rusage = unsafe_zeroed();
        // SAFETY: `usage` is a valid rusage for the call to fill.
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &raw mut usage) };
        let micros = |time: libc::timeval| {
            u64::try_from(time.tv_sec).unwrap_or(0) * 1_000_000
                + u64::try_from(time.tv_usec).unwrap_or(0)
        };
        Self {
            monotonic: clock_ns(libc::CLOCK_MONOTONIC),
            thread: clock_ns(libc::CLOCK_THREAD_CPUTIME_ID),
            children: (micros(usage.ru_utime) + micros(usage.ru_stime)) * 1_000,
        }
    }
}

fn unsafe_zeroed() -> libc::rusage {
    // SAFETY: rusage is plain integers, for which all zeroes is a valid value.
    unsafe { std::mem::zeroed() }
}

/// Runs `name` for `iterations` and returns ns per operation on each clock, as the line
/// `monotonic M thread T thread_children C`, or why it cannot run.
pub fn run(name: &str, iterations: u64, arg: &str) -> Result<String, String> {
    let before = Clocks::now();
    match name {
        "getppid" => {
            for _ in 0..iterations {
                // SAFETY: getppid has no arguments and cannot fail.
                std::hint::black_box(unsafe { libc::getppid() });
            }
        }
        "open-close" => open_close(arg, iterations, true)?,
        "open-denied" => open_close(arg, iterations, false)?,
        "tcp-connect" => {
            let peer: SocketAddr = arg.parse().map_err(|_| format!("bad peer {arg}"))?;
            for _ in 0..iterations {
                let stream =
                    TcpStream::connect(peer).map_err(|e| format!("connect {peer}: {e}"))?;
                reset_on_close(&stream)?;
            }
        }
        "udp-sendto" => {
            let peer: SocketAddr = arg.parse().map_err(|_| format!("bad peer {arg}"))?;
            let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            for _ in 0..iterations {
                socket
                    .send_to(b"kya", peer)
                    .map_err(|e| format!("sendto {peer}: {e}"))?;
            }
        }
        "fork-exec" => {
            for _ in 0..iterations {
                let status = Command::new(arg)
                    .status()
                    .map_err(|e| format!("{arg}: {e}"))?;
                if !status.success() {
                    return Err(format!("{arg} exited with {status}"));
                }
            }
        }
        other => return Err(format!("unknown workload {other}")),
    }
    let after = Clocks::now();
    #[expect(
        clippy::cast_precision_loss,
        reason = "nanosecond totals fit an f64 well"
    )]
    let per_op = |from: u64, to: u64| to.saturating_sub(from) as f64 / iterations as f64;
    Ok(format!(
        "monotonic {} thread {} thread_children {}",
        per_op(before.monotonic, after.monotonic),
        per_op(before.thread, after.thread),
        per_op(
            before.thread + before.children,
            after.thread + after.children
        ),
    ))
}

/// Closes `stream` with a reset (`SO_LINGER` 0): no TIME_WAIT is left behind. Closed the
/// ordinary way, every connect left its port in TIME_WAIT for 60 s of guest time, thousands per
/// turn, and later turns' connects searched ever longer for a free port (a turn's time per
/// connect ranged 0.09 to 4.1 ms, with kya or without).
fn reset_on_close(stream: &TcpStream) -> Result<(), String> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a linger struct of the size given.
    let set = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            libc::socklen_t::try_from(size_of::<libc::linger>()).unwrap_or(0),
        )
    };
    if set == 0 {
        Ok(())
    } else {
        Err(format!("SO_LINGER: {}", std::io::Error::last_os_error()))
    }
}

/// Opens and closes `path`; `expect_open` says whether the opens must succeed or be refused.
fn open_close(path: &str, iterations: u64, expect_open: bool) -> Result<(), String> {
    let path = CString::new(path).map_err(|e| e.to_string())?;
    for _ in 0..iterations {
        // SAFETY: a plain open of a NUL-terminated path; the descriptor is closed at once.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd >= 0 {
            // SAFETY: the descriptor was just opened here.
            unsafe { libc::close(fd) };
        }
        if (fd >= 0) != expect_open {
            return Err(format!(
                "open of {path:?} {}",
                if expect_open { "failed" } else { "succeeded" }
            ));
        }
    }
    Ok(())
}

/// Tries to open `path` (refused) at `rate` per second for `seconds`; returns the attempts.
pub fn flood(path: &str, rate: u64, seconds: f64) -> Result<u64, String> {
    let path = CString::new(path).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut attempts = 0_u64;
    loop {
        let elapsed = started.elapsed().as_secs_f64();
        if elapsed >= seconds {
            return Ok(attempts);
        }
        // Pace: never ahead of `rate` (0: as fast as possible).
        #[expect(clippy::cast_precision_loss, reason = "attempt counts fit an f64 well")]
        if rate > 0 && attempts as f64 >= elapsed * rate as f64 {
            std::hint::spin_loop();
            continue;
        }
        // SAFETY: a plain open of a NUL-terminated path; the descriptor is closed at once.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd >= 0 {
            // SAFETY: the descriptor was just opened here.
            unsafe { libc::close(fd) };
            return Err("the flood's file was not refused".to_owned());
        }
        attempts += 1;
    }
}

/// Retries opening `path` until it works; returns `CLOCK_MONOTONIC` nanoseconds at success.
pub fn wait_open(path: &str) -> Result<u64, String> {
    let path = CString::new(path).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + std::time::Duration::from_mins(2);
    while Instant::now() < deadline {
        // SAFETY: a plain open of a NUL-terminated path; the descriptor is closed at once.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd >= 0 {
            let now = monotonic_ns();
            // SAFETY: the descriptor was just opened here.
            unsafe { libc::close(fd) };
            return Ok(now);
        }
        std::thread::sleep(std::time::Duration::from_micros(100));
    }
    Err("never allowed".to_owned())
}

/// `CLOCK_MONOTONIC` now, comparable across processes.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// The clock `clock` now, in nanoseconds.
fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(clock, &raw mut now) };
    u64::try_from(now.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(now.tv_nsec).unwrap_or(0)
}
