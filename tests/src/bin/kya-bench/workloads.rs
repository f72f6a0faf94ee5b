//! The measured loops. Each runs in its own process (`kya-bench worker ...`), untagged or
//! tagged through `kya run`, and reports nanoseconds per operation; the process's own start-up
//! is outside the timed loop.
use std::{
    ffi::CString,
    net::{SocketAddr, TcpStream, UdpSocket},
    process::Command,
    time::Instant,
};

/// Runs `name` for `iterations` and returns ns per operation, or why it cannot run.
pub fn run(name: &str, iterations: u64, arg: &str) -> Result<f64, String> {
    let started = Instant::now();
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
                drop(TcpStream::connect(peer).map_err(|e| format!("connect {peer}: {e}"))?);
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
    #[expect(
        clippy::cast_precision_loss,
        reason = "nanosecond totals fit an f64 well"
    )]
    Ok(started.elapsed().as_nanos() as f64 / iterations as f64)
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
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut now) };
    u64::try_from(now.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(now.tv_nsec).unwrap_or(0)
}
