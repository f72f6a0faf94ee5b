//! The whole benchmark, run inside the VM: ABBA rounds of pristine (no kya) and loaded (kya-agent
//! enforcing), the same workloads in each, untagged and tagged; then, with kya loaded, the
//! in-kernel cost per program, the event pipeline, memory and latencies. Prints one
//! `KYA-BENCH-JSON` line for the host to collect.
use std::{
    fs,
    net::{TcpListener, UdpSocket},
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{pipeline, programs};

pub const DIR: &str = "/tmp/kya-bench";
pub const PLAIN: &str = "/srv/bench/plain.txt";
pub const SECRET: &str = "/srv/bench/secret.txt";
pub const TCP_PEER: &str = "127.0.0.1:7001";
pub const UDP_PEER: &str = "127.0.0.1:7002";
pub const AGENT: &str = "bench";

const CONFIG: &str = r#"
[[agents]]
name = "bench"
owner = "root"
[agents.files]
protect = ["/srv/bench/secret.txt"]
[agents.network]
allow = ["127.0.0.1:7001", "127.0.0.1:7002"]
allow_dns = false
"#;

/// How much to measure.
#[derive(Clone, Copy)]
pub struct Size {
    pub rounds: usize,
    /// Multiplies every workload's iteration count.
    pub scale: u64,
    /// Seconds of each flood step.
    pub flood_seconds: f64,
}

/// One row of the table: a workload, run untagged or as an agent.
struct Row {
    /// The workload's name in `results.json`.
    key: &'static str,
    label: &'static str,
    workload: &'static str,
    arg: &'static str,
    /// In loaded turns, run through `kya run` (tagged).
    tagged: bool,
    /// In pristine turns, this workload stands in (the denied open is an open there).
    pristine_workload: &'static str,
    iterations: u64,
}

const fn row(
    key: &'static str,
    label: &'static str,
    workload: &'static str,
    arg: &'static str,
    tagged: bool,
    iterations: u64,
) -> Row {
    Row {
        key,
        label,
        workload,
        arg,
        tagged,
        pristine_workload: workload,
        iterations,
    }
}

const ROWS: &[Row] = &[
    row(
        "getppid_untagged",
        "getppid (control)",
        "getppid",
        "",
        false,
        200_000,
    ),
    row(
        "getppid_tagged",
        "getppid, tagged",
        "getppid",
        "",
        true,
        200_000,
    ),
    row(
        "open_close_untagged",
        "open+close",
        "open-close",
        PLAIN,
        false,
        20_000,
    ),
    row(
        "open_close_tagged_allowed",
        "open+close, tagged (allowed)",
        "open-close",
        PLAIN,
        true,
        20_000,
    ),
    Row {
        key: "open_denied_tagged",
        label: "open protected, tagged (denied + event)",
        workload: "open-denied",
        arg: SECRET,
        tagged: true,
        pristine_workload: "open-close",
        iterations: 20_000,
    },
    row(
        "connect_untagged",
        "tcp connect",
        "tcp-connect",
        TCP_PEER,
        false,
        2_000,
    ),
    row(
        "connect_tagged_allowed",
        "tcp connect, tagged (allowed)",
        "tcp-connect",
        TCP_PEER,
        true,
        2_000,
    ),
    row(
        "sendto_untagged",
        "udp sendto",
        "udp-sendto",
        UDP_PEER,
        false,
        20_000,
    ),
    row(
        "sendto_tagged_allowed",
        "udp sendto, tagged (allowed)",
        "udp-sendto",
        UDP_PEER,
        true,
        20_000,
    ),
    row(
        "fork_exec_untagged",
        "fork+exec+wait",
        "fork-exec",
        "/bin/true",
        false,
        300,
    ),
    row(
        "fork_exec_tagged",
        "fork+exec+wait, tagged",
        "fork-exec",
        "/bin/true",
        true,
        300,
    ),
];

/// Proves the VM's clock behaves under `-icount sleep=off`: a 10 ms sleep returns (timers fire
/// with no host time passing) and no sooner than asked, and `CLOCK_MONOTONIC` advances while the
/// CPU only computes (time counts instructions).
fn clock_check() -> Result<Value, String> {
    use std::time::{Duration, Instant};
    let asked = Duration::from_millis(10);
    let before = Instant::now();
    std::thread::sleep(asked);
    let slept = before.elapsed();
    if slept < asked {
        return Err(format!("a {asked:?} sleep returned after {slept:?}"));
    }
    let before = Instant::now();
    let mut sum = 0_u64;
    for step in 0..1_000_000_u64 {
        sum = std::hint::black_box(sum.wrapping_add(step));
    }
    let busy = before.elapsed();
    if busy.is_zero() {
        return Err("CLOCK_MONOTONIC stood still over a million additions".to_owned());
    }
    eprintln!(
        "bench: clock: a 10 ms sleep took {slept:?}; a million additions {busy:?} (sum {sum})"
    );
    Ok(json!({
        "sleep_10ms_ns": slept.as_nanos(),
        "million_additions_ns": busy.as_nanos(),
    }))
}

pub fn run(size: Size) -> Result<Value, String> {
    let clock = clock_check()?;
    // Pristine means pristine: nothing of an earlier kya stays attached.
    unload()?;
    prepare()?;
    let _listeners = listen()?;
    // A first, unrecorded turn: the first run of each workload pays for cold caches (the
    // binary's pages, dentries), which would skew the first pair alone.
    eprintln!("bench: warm-up turn (not recorded)");
    for row in ROWS.iter().filter(|row| !row.tagged) {
        measure(row, false, size.scale)?;
    }
    let mut pristine: Vec<Vec<f64>> = vec![Vec::new(); ROWS.len()];
    let mut loaded: Vec<Vec<f64>> = vec![Vec::new(); ROWS.len()];
    let mut start_ms = Vec::new();
    let mut rss_rest_kb = Vec::new();
    for round in 0..size.rounds {
        eprintln!("bench: round {} of {}: pristine", round + 1, size.rounds);
        // The kernel frees detached programs asynchronously (after an RCU grace period), so
        // give the last turn's programs a moment to go.
        if !programs::gone_within(std::time::Duration::from_secs(10))? {
            return Err("kya programs are still loaded in a pristine turn".to_owned());
        }
        for (index, row) in ROWS.iter().enumerate() {
            pristine[index].push(measure(row, false, size.scale)?);
        }
        eprintln!(
            "bench: round {} of {}: kya loaded, twice",
            round + 1,
            size.rounds
        );
        let (daemon, started) = Daemon::start()?;
        start_ms.push(started.as_secs_f64() * 1e3);
        for _ in 0..2 {
            for (index, row) in ROWS.iter().enumerate() {
                loaded[index].push(measure(row, true, size.scale)?);
            }
        }
        rss_rest_kb.push(daemon.rss_kb()?);
        daemon.stop()?;
        eprintln!("bench: round {} of {}: pristine", round + 1, size.rounds);
        if !programs::gone_within(std::time::Duration::from_secs(10))? {
            return Err("kya programs are still loaded in a pristine turn".to_owned());
        }
        for (index, row) in ROWS.iter().enumerate() {
            pristine[index].push(measure(row, false, size.scale)?);
        }
    }
    eprintln!("bench: in-kernel cost, event pipeline and latencies");
    let (daemon, _) = Daemon::start()?;
    let programs = programs::cost_per_call(|| {
        for row in ROWS.iter().filter(|row| !row.tagged) {
            measure(row, false, size.scale)?;
        }
        Ok(())
    })?;
    let pipeline = pipeline::measure(&daemon, size.flood_seconds)?;
    let approve = pipeline::approve_latency()?;
    daemon.stop()?;
    let control = median(&pristine[0]);
    let rows: Vec<Value> = ROWS
        .iter()
        .enumerate()
        .map(|(index, row)| summarize(row, &pristine[index], &loaded[index], control))
        .collect();
    Ok(json!({
        "kernel": kernel_release(),
        "rounds": size.rounds,
        "clock": clock,
        "workloads": rows,
        "programs_ns_per_call": programs,
        "pipeline": pipeline,
        "daemon": {
            "start_to_enforcing_ms": stats(&start_ms),
            "rss_rest_kb": stats(&rss_rest_kb),
        },
        "approve": approve,
    }))
}

fn prepare() -> Result<(), String> {
    let _ = fs::remove_dir_all(DIR);
    fs::create_dir_all(DIR).map_err(|e| e.to_string())?;
    fs::write(Path::new(DIR).join("kya.toml"), CONFIG).map_err(|e| e.to_string())?;
    fs::create_dir_all("/srv/bench").map_err(|e| e.to_string())?;
    fs::write(PLAIN, "ordinary\n").map_err(|e| e.to_string())?;
    fs::write(SECRET, "secret\n").map_err(|e| e.to_string())
}

/// A TCP listener that accepts (and drops) every connection, and a UDP socket to send to.
fn listen() -> Result<(TcpListener, UdpSocket), String> {
    let tcp = TcpListener::bind(TCP_PEER).map_err(|e| format!("{TCP_PEER}: {e}"))?;
    let acceptor = tcp.try_clone().map_err(|e| e.to_string())?;
    thread::spawn(move || {
        for stream in acceptor.incoming() {
            drop(stream);
        }
    });
    let udp = UdpSocket::bind(UDP_PEER).map_err(|e| format!("{UDP_PEER}: {e}"))?;
    Ok((tcp, udp))
}

/// Runs one row in a worker process and returns its ns per operation.
fn measure(row: &Row, kya_loaded: bool, scale: u64) -> Result<f64, String> {
    let workload = if kya_loaded {
        row.workload
    } else {
        row.pristine_workload
    };
    let iterations = (row.iterations * scale / 100).max(10).to_string();
    let output = worker(row.tagged && kya_loaded, &[workload, &iterations, row.arg])?;
    output
        .strip_prefix("ns_per_op ")
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| format!("{}: worker said {output}", row.label))
}

/// Runs `kya-bench worker ARGS`, as agent `bench` when `tagged`; returns its result line.
pub fn worker(tagged: bool, args: &[&str]) -> Result<String, String> {
    let this = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = if tagged {
        let mut command = Command::new("/usr/local/bin/kya");
        command.args(["run", "--agent", AGENT, "--"]).arg(&this);
        command
    } else {
        Command::new(&this)
    };
    let output = command
        .arg("worker")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() {
        return Err(format!(
            "worker {args:?} failed: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(stdout)
}

fn summarize(row: &Row, pristine: &[f64], loaded: &[f64], control: f64) -> Value {
    let ratios: Vec<f64> = pristine
        .iter()
        .zip(loaded)
        .map(|(pristine, loaded)| loaded / pristine)
        .collect();
    let added = median(loaded) - median(pristine);
    json!({
        "workload": row.label,
        "key": row.key,
        "pair_ratios": ratios,
        "pristine_ns": stats(pristine),
        "loaded_ns": stats(loaded),
        "ratio": stats(&ratios),
        "added_ns": added,
        "added_null_syscalls": added / control,
    })
}

/// Median, min and max.
pub fn stats(values: &[f64]) -> Value {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    json!({
        "median": median(values),
        "min": sorted.first().copied().unwrap_or(f64::NAN),
        "max": sorted.last().copied().unwrap_or(f64::NAN),
    })
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => f64::midpoint(sorted[n / 2 - 1], sorted[n / 2]),
    }
}

fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|release| release.trim().to_owned())
        .unwrap_or_default()
}

/// kya-agent, started for a loaded turn and stopped (detaching everything) after it.
pub struct Daemon {
    child: Child,
}

impl Daemon {
    /// Starts the daemon; returns it once it answers on its socket, with how long that took.
    pub fn start() -> Result<(Self, Duration), String> {
        let _ = fs::remove_dir_all(Path::new(DIR).join("state"));
        let started = Instant::now();
        let mut child = Command::new("/usr/local/bin/kya-agent")
            .args(["--config", &format!("{DIR}/kya.toml")])
            .args(["--state-dir", &format!("{DIR}/state")])
            .env("KYA_LOG", "error")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        while started.elapsed() < Duration::from_mins(5) {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("kya-agent exited during start-up: {status}"));
            }
            let answered = Command::new("/usr/local/bin/kya")
                .args(["ps", "--json"])
                .output()
                .is_ok_and(|output| output.status.success());
            if answered {
                return Ok((Self { child }, started.elapsed()));
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        Err("kya-agent did not start within 300 s".to_owned())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, in KiB.
    pub fn rss_kb(&self) -> Result<f64, String> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .map_err(|e| e.to_string())?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| "no VmRSS".to_owned())
    }

    /// Stops the daemon and unloads what it pinned (a stopped daemon leaves enforcement in
    /// force), so that the next pristine turn really runs without kya.
    pub fn stop(mut self) -> Result<(), String> {
        // SAFETY: plain kill(2) of our own child.
        unsafe { libc::kill(i32::try_from(self.child.id()).unwrap_or(0), libc::SIGTERM) };
        let _ = self.child.wait();
        unload()
    }
}

/// `kya-agent unload`: nothing of kya stays in the kernel.
pub fn unload() -> Result<(), String> {
    let output = Command::new("/usr/local/bin/kya-agent")
        .arg("unload")
        .output()
        .map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "kya-agent unload: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
