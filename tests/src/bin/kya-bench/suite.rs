//! The whole benchmark, run inside the VM: rounds of three kinds of turn, the same workloads in
//! each, untagged and tagged: pristine (no kya), floor (kya's programs attached but returning at
//! once, see `floor`) and kya (kya-agent enforcing), in the balanced order pristine, floor, kya,
//! kya, floor, pristine; then, with kya loaded and with the floor, the in-kernel cost per
//! program, the event pipeline, memory and latencies. Prints one `KYA-BENCH-JSON` line for the
//! host to collect.
use std::{
    fs,
    net::{TcpListener, UdpSocket},
    os::fd::AsRawFd as _,
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{floor::Floor, pipeline, programs};

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
    /// The clock its figures are read on.
    clock: Clock,
}

/// The clocks each worker reads (see `workloads`); each row is reported on one of them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Clock {
    /// The worker thread's CPU time: system-call loops, whose work all runs in that thread.
    Thread,
    /// The worker thread's CPU time plus its reaped children's: fork+exec+wait.
    ThreadChildren,
    /// `CLOCK_MONOTONIC`: everything the guest ran meanwhile, reported beside for comparison.
    Monotonic,
}

impl Clock {
    const ALL: [Self; 3] = [Self::Thread, Self::ThreadChildren, Self::Monotonic];

    /// Its name in the worker's line, the report and `results.json`.
    const fn name(self) -> &'static str {
        match self {
            Self::Thread => "thread",
            Self::ThreadChildren => "thread_children",
            Self::Monotonic => "monotonic",
        }
    }
}

/// One worker run's ns per operation, on each clock (in `Clock::ALL` order).
type Sample = [f64; 3];

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
        clock: if matches!(workload.as_bytes(), b"fork-exec") {
            Clock::ThreadChildren
        } else {
            Clock::Thread
        },
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
        clock: Clock::Thread,
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

/// Every turn's samples of one row: the i-th pristine, floor and kya samples make pair i.
#[derive(Clone, Default)]
struct Turns {
    pristine: Vec<Sample>,
    floor: Vec<Sample>,
    kya: Vec<Sample>,
}

/// The kind of turn: what is attached while the workloads run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pristine,
    Floor,
    Kya,
}

pub fn run(size: Size) -> Result<Value, String> {
    let clock = clock_check()?;
    // Pristine means pristine: nothing of an earlier kya stays attached.
    unload()?;
    prepare()?;
    let peers = Peers::new()?;
    // A first, unrecorded turn: the first run of each workload pays for cold caches (the
    // binary's pages, dentries), which would skew the first pair alone.
    eprintln!("bench: warm-up turn (not recorded)");
    for row in ROWS.iter().filter(|row| !row.tagged) {
        measure(&peers, row, Kind::Pristine, size.scale)?;
    }
    let mut turns: Vec<Turns> = vec![Turns::default(); ROWS.len()];
    let mut start_ms = Vec::new();
    let mut rss_rest_kb = Vec::new();
    for round in 1..=size.rounds {
        let say = |what: &str| eprintln!("bench: round {round} of {}: {what}", size.rounds);
        say("pristine");
        turn(&peers, &mut turns, Kind::Pristine, size.scale)?;
        say("floor");
        floor_turn(&peers, &mut turns, size.scale)?;
        say("kya loaded, twice");
        let (daemon, started) = Daemon::start()?;
        start_ms.push(started.as_secs_f64() * 1e3);
        turn(&peers, &mut turns, Kind::Kya, size.scale)?;
        turn(&peers, &mut turns, Kind::Kya, size.scale)?;
        rss_rest_kb.push(daemon.rss_kb()?);
        daemon.stop()?;
        say("floor");
        floor_turn(&peers, &mut turns, size.scale)?;
        say("pristine");
        turn(&peers, &mut turns, Kind::Pristine, size.scale)?;
    }
    eprintln!("bench: in-kernel cost, event pipeline and latencies");
    let (daemon, _) = Daemon::start()?;
    // The pipeline first: the tagged workloads' denied opens leave events that the daemon,
    // sharing the one vCPU, is still counting when they end, and the first flood step counted
    // them as its own.
    let pipeline = pipeline::measure(&daemon, size.flood_seconds)?;
    let approve = pipeline::approve_latency()?;
    let sizes = programs::sizes()?;
    let untagged = programs::cost_per_call(|| each_row(&peers, false, Kind::Kya, size.scale))?;
    let tagged = programs::cost_per_call(|| each_row(&peers, true, Kind::Kya, size.scale))?;
    daemon.stop()?;
    let floor = {
        all_gone()?;
        let _floor = Floor::attach()?;
        programs::cost_per_call(|| each_row(&peers, false, Kind::Floor, size.scale))?
    };
    all_gone()?;
    let control = median(&clock_of(&turns[0].pristine, Clock::Thread));
    let rows: Vec<Value> = ROWS
        .iter()
        .zip(&turns)
        .map(|(row, turns)| summarize(row, turns, control))
        .collect();
    Ok(json!({
        "kernel": kernel_release(),
        "rounds": size.rounds,
        "clock": clock,
        "workloads": rows,
        "programs": {
            "untagged": untagged,
            "tagged": tagged,
            "floor": floor,
            "sizes": sizes,
        },
        "pipeline": pipeline,
        "daemon": {
            "start_to_enforcing_ms": stats(&start_ms),
            "rss_rest_kb": stats(&rss_rest_kb),
        },
        "approve": approve,
    }))
}

/// One turn of every row, its samples appended to the turn kind's series.
fn turn(peers: &Peers, turns: &mut [Turns], kind: Kind, scale: u64) -> Result<(), String> {
    if kind == Kind::Pristine {
        all_gone()?;
    }
    for (row, turns) in ROWS.iter().zip(turns.iter_mut()) {
        let sample = measure(peers, row, kind, scale)?;
        match kind {
            Kind::Pristine => turns.pristine.push(sample),
            Kind::Floor => turns.floor.push(sample),
            Kind::Kya => turns.kya.push(sample),
        }
    }
    Ok(())
}

/// A floor turn: nothing else attached, the floor attached for the turn, detached after it.
fn floor_turn(peers: &Peers, turns: &mut [Turns], scale: u64) -> Result<(), String> {
    all_gone()?;
    let floor = Floor::attach()?;
    turn(peers, turns, Kind::Floor, scale)?;
    drop(floor);
    Ok(())
}

/// Runs the rows that are (or are not) tagged once, for the per-program statistics.
fn each_row(peers: &Peers, tagged: bool, kind: Kind, scale: u64) -> Result<(), String> {
    for row in ROWS.iter().filter(|row| row.tagged == tagged) {
        measure(peers, row, kind, scale)?;
    }
    Ok(())
}

/// Waits for every program of kya (or of the floor) to be gone: the kernel frees detached
/// programs asynchronously, after an RCU grace period.
fn all_gone() -> Result<(), String> {
    if programs::gone_within(Duration::from_secs(10))? {
        Ok(())
    } else {
        Err("kya programs are still loaded where none should be".to_owned())
    }
}

fn prepare() -> Result<(), String> {
    let _ = fs::remove_dir_all(DIR);
    fs::create_dir_all(DIR).map_err(|e| e.to_string())?;
    fs::write(Path::new(DIR).join("kya.toml"), CONFIG).map_err(|e| e.to_string())?;
    fs::create_dir_all("/srv/bench").map_err(|e| e.to_string())?;
    fs::write(PLAIN, "ordinary\n").map_err(|e| e.to_string())?;
    fs::write(SECRET, "secret\n").map_err(|e| e.to_string())
}

/// The peers the network rows talk to: a TCP listener and a UDP socket.
struct Peers {
    tcp: TcpListener,
    _udp: UdpSocket,
}

/// Room in the TCP listener's accept queue: more than a turn's connects (the kernel caps it at
/// `net.core.somaxconn`, 4096 on both test kernels).
const TCP_BACKLOG: i32 = 4096;

impl Peers {
    fn new() -> Result<Self, String> {
        let tcp = TcpListener::bind(TCP_PEER).map_err(|e| format!("{TCP_PEER}: {e}"))?;
        // SAFETY: listen(2) again on a listening socket only resizes its accept queue.
        if unsafe { libc::listen(tcp.as_raw_fd(), TCP_BACKLOG) } != 0 {
            return Err(format!(
                "listen {TCP_PEER}: {}",
                std::io::Error::last_os_error()
            ));
        }
        tcp.set_nonblocking(true).map_err(|e| e.to_string())?;
        let udp = UdpSocket::bind(UDP_PEER).map_err(|e| format!("{UDP_PEER}: {e}"))?;
        Ok(Self { tcp, _udp: udp })
    }

    /// Accepts (and drops) every connection waiting. Only between rows: an accepting thread
    /// that ran during the connect loop made its cost depend on how the two interleaved (one
    /// turn's time per connect differed from the next's by 7%), so during the loop the
    /// connections just queue.
    fn drain(&self) -> Result<(), String> {
        loop {
            match self.tcp.accept() {
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) => return Err(format!("accept on {TCP_PEER}: {error}")),
            }
        }
    }
}

/// Runs one row in a worker process and returns its ns per operation on every clock. Only a
/// kya turn runs tagged rows tagged: in a floor turn there is no daemon to tag them (and
/// nothing that would look at a tag), in a pristine one no kya.
fn measure(peers: &Peers, row: &Row, kind: Kind, scale: u64) -> Result<Sample, String> {
    peers.drain()?;
    let workload = if kind == Kind::Kya {
        row.workload
    } else {
        row.pristine_workload
    };
    let iterations = (row.iterations * scale / 100).max(10).to_string();
    let output = worker(
        row.tagged && kind == Kind::Kya,
        &[workload, &iterations, row.arg],
    )?;
    peers.drain()?;
    parse_sample(&output).ok_or_else(|| format!("{}: worker said {output}", row.label))
}

/// The worker's `monotonic M thread T thread_children C` line, in `Clock::ALL` order.
fn parse_sample(line: &str) -> Option<Sample> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut sample = [f64::NAN; 3];
    for (slot, clock) in sample.iter_mut().zip(Clock::ALL) {
        let at = words.iter().position(|word| *word == clock.name())?;
        *slot = words.get(at + 1)?.parse().ok()?;
    }
    Some(sample)
}

/// One clock's figures out of samples.
fn clock_of(samples: &[Sample], clock: Clock) -> Vec<f64> {
    let index = Clock::ALL
        .iter()
        .position(|known| *known == clock)
        .unwrap_or(0);
    samples.iter().map(|sample| sample[index]).collect()
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

/// Ratios of pair i of `over` to pair i of `under`.
fn pair_ratios(over: &[f64], under: &[f64]) -> Vec<f64> {
    over.iter()
        .zip(under)
        .map(|(over, under)| over / under)
        .collect()
}

/// A row's figures on its own clock (kya / pristine, floor / pristine, kya / floor, pair by
/// pair), and the kya / pristine pairs on every clock for comparison.
fn summarize(row: &Row, turns: &Turns, control: f64) -> Value {
    let [pristine, floor, kya] =
        [&turns.pristine, &turns.floor, &turns.kya].map(|samples| clock_of(samples, row.clock));
    let added = median(&kya) - median(&pristine);
    let by_clock: serde_json::Map<String, Value> = Clock::ALL
        .iter()
        .map(|&clock| {
            let ratios = pair_ratios(
                &clock_of(&turns.kya, clock),
                &clock_of(&turns.pristine, clock),
            );
            (clock.name().to_owned(), json!(ratios))
        })
        .collect();
    json!({
        "workload": row.label,
        "key": row.key,
        "clock": row.clock.name(),
        "pair_ratios": pair_ratios(&kya, &pristine),
        "floor_pair_ratios": pair_ratios(&floor, &pristine),
        "kya_over_floor_pair_ratios": pair_ratios(&kya, &floor),
        "pair_ratios_by_clock": by_clock,
        "pristine_ns": stats(&pristine),
        "floor_ns": stats(&floor),
        "loaded_ns": stats(&kya),
        "added_ns": added,
        "added_over_floor_ns": median(&kya) - median(&floor),
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
        // Errors only, kept in a file: a daemon that fails to start says why.
        let log_path = Path::new(DIR).join("kya-agent.log");
        let log = fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let started = Instant::now();
        let mut child = Command::new("/usr/local/bin/kya-agent")
            .args(["--config", &format!("{DIR}/kya.toml")])
            .args(["--state-dir", &format!("{DIR}/state")])
            .env("KYA_LOG", "error")
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| e.to_string())?;
        while started.elapsed() < Duration::from_mins(5) {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                let said = fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!(
                    "kya-agent exited during start-up: {status}: {said}"
                ));
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
