//! The event pipeline under floods of denied attempts, the daemon's memory, and the time from
//! an approval to the agent's next attempt succeeding.
use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{
    suite::{self, AGENT, Daemon, SECRET},
    workloads::monotonic_ns,
};

/// Target rates of denied attempts per second; 0 is as fast as one process can. The first is
/// below one agent's event budget (`kya_common::maps::AGENT_EVENT_BUDGET` a second, shared
/// among the CPUs); above it the agent's events are dropped by design, and reported as loss.
const RATES: &[u64] = &[500, 2_000, 10_000, 50_000, 0];

/// Floods at each rate and reports what the daemon absorbed and what it lost.
pub fn measure(daemon: &Daemon, seconds: f64) -> Result<Value, String> {
    let mut steps = Vec::new();
    let mut absorbed = 0.0_f64;
    let mut rss_peak = daemon.rss_kb()?;
    for &rate in RATES {
        let before = Counts::scrape()?;
        let sampling = Arc::new(AtomicBool::new(true));
        let sampler = {
            let sampling = Arc::clone(&sampling);
            let pid = daemon.pid();
            thread::spawn(move || {
                let mut peak = 0.0_f64;
                while sampling.load(Ordering::Relaxed) {
                    if let Some(rss) = rss_of(pid) {
                        peak = peak.max(rss);
                    }
                    thread::sleep(Duration::from_millis(50));
                }
                peak
            })
        };
        let output = suite::worker(
            true,
            &["flood", SECRET, &rate.to_string(), &seconds.to_string()],
        )?;
        let attempts: u64 = output
            .strip_prefix("attempts ")
            .and_then(|value| value.trim().parse().ok())
            .ok_or_else(|| format!("flood worker said {output}"))?;
        // The metrics follow the kernel's counts within a second or two.
        let deadline = Instant::now() + Duration::from_secs(30);
        let after = loop {
            let now = Counts::scrape()?;
            if now.denied - before.denied >= attempts || Instant::now() > deadline {
                break now;
            }
            thread::sleep(Duration::from_millis(200));
        };
        sampling.store(false, Ordering::Relaxed);
        rss_peak = rss_peak.max(sampler.join().unwrap_or(0.0));
        let lost = after.lost - before.lost;
        let over_budget = after.over_budget - before.over_budget;
        #[expect(clippy::cast_precision_loss, reason = "counts fit an f64 well")]
        let achieved = attempts as f64 / seconds;
        if lost == 0 {
            absorbed = absorbed.max(achieved);
        }
        #[expect(clippy::cast_precision_loss, reason = "counts fit an f64 well")]
        steps.push(json!({
            "target_per_s": rate,
            "achieved_per_s": achieved,
            "attempts": attempts,
            "counted": after.denied - before.denied,
            "events_lost": lost,
            "events_lost_over_budget": over_budget,
            "loss_ratio": lost as f64 / attempts.max(1) as f64,
        }));
    }
    Ok(json!({
        "steps": steps,
        "absorbed_without_loss_per_s": absorbed,
        "rss_flood_peak_kb": rss_peak,
    }))
}

/// `kya approve` on a pending request, while the agent retries every 0.1 ms: how long the
/// approval call took, and from its return to the agent's first success (negative: the agent
/// got through before the CLI had its answer).
pub fn approve_latency() -> Result<Value, String> {
    let mut calls = Vec::new();
    let mut after_return = Vec::new();
    for _ in 0..3 {
        let this = std::env::current_exe().map_err(|e| e.to_string())?;
        let waiter = Command::new("/usr/local/bin/kya")
            .args(["run", "--agent", AGENT, "--"])
            .arg(&this)
            .args(["worker", "wait-open", SECRET])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let request = pending_request()?;
        let started = monotonic_ns();
        let approved = Command::new("/usr/local/bin/kya")
            .args(["approve", &request, "--once"])
            .output()
            .map_err(|e| e.to_string())?;
        let returned = monotonic_ns();
        if !approved.status.success() {
            return Err(format!("kya approve: {approved:?}"));
        }
        let output = waiter.wait_with_output().map_err(|e| e.to_string())?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let allowed: i64 = stdout
            .trim()
            .strip_prefix("allowed_at ")
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| format!("waiter said {stdout}"))?;
        #[expect(clippy::cast_precision_loss, reason = "nanoseconds fit an f64 well")]
        {
            calls.push((returned - started) as f64 / 1e6);
            after_return.push((allowed - i64::try_from(returned).unwrap_or(i64::MAX)) as f64 / 1e6);
        }
    }
    Ok(json!({
        "approve_call_ms": suite::stats(&calls),
        "return_to_allowed_ms": suite::stats(&after_return),
    }))
}

fn pending_request() -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let output = Command::new("/usr/local/bin/kya")
            .args(["pending", "--json"])
            .output()
            .map_err(|e| e.to_string())?;
        let requests: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap_or_default();
        if let Some(id) = requests
            .iter()
            .find(|request| request["agent"] == AGENT)
            .and_then(|request| request["id"].as_str())
        {
            return Ok(id.to_owned());
        }
        thread::sleep(Duration::from_millis(20));
    }
    Err("no pending request for the waiting agent".to_owned())
}

fn rss_of(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The daemon's counts of the bench agent's denied opens and of lost events.
struct Counts {
    denied: u64,
    /// Events lost at every stage.
    lost: u64,
    /// Of those, events over the agent's budget.
    over_budget: u64,
}

impl Counts {
    fn scrape() -> Result<Self, String> {
        let mut stream =
            TcpStream::connect("127.0.0.1:9464").map_err(|e| format!("metrics: {e}"))?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: kya\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut body = String::new();
        stream
            .read_to_string(&mut body)
            .map_err(|e| e.to_string())?;
        let value = |series: &str| -> u64 {
            body.lines()
                .find_map(|line| line.strip_prefix(series))
                // Counters are integers; the text format may still write them as floats.
                .and_then(|value| value.trim().trim_end_matches(".0").parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(Self {
            denied: value(&format!(
                "kya_denied_total{{agent=\"{AGENT}\",kind=\"file-open\"}} "
            )),
            lost: value("kya_events_lost_total{stage=\"agent_budget\"} ")
                + value("kya_events_lost_total{stage=\"kernel_ring_buffer\"} ")
                + value("kya_events_lost_total{stage=\"daemon_queue\"} "),
            over_budget: value("kya_events_lost_total{stage=\"agent_budget\"} "),
        })
    }
}
