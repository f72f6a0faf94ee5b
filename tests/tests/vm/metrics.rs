//! The Prometheus endpoint against the real kernel: exact counts after real denied attempts,
//! grant activity, a flood that loses events (counted) without losing a single count, and
//! another agent's request approved as promptly as ever during a flood.
use std::{
    collections::{BTreeMap, HashMap},
    fs,
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream},
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use kya_tests::{Daemon, EPERM, Fixture, Probe, eventually, kya, op_exe};
use nix::sys::signal::Signal;

const SECRET: &str = "/home/alice/.aws/credentials";
const ENDPOINT: &str = "127.0.0.1:9464";
/// Denied opens in the flood: far more events than the 1 MiB ring buffer holds.
const FLOOD: u32 = 20_000;

fn plant() {
    fs::create_dir_all(Path::new(SECRET).parent().unwrap()).unwrap();
    fs::write(SECRET, "secret\n").unwrap();
}

/// A scrape once the counters have caught up with the kernel's counts, which the daemon reads
/// every second: an earlier test's last denials must not land in this test's differences.
fn settled_scrape() -> HashMap<String, f64> {
    let counters = |metrics: &HashMap<String, f64>| -> BTreeMap<String, f64> {
        metrics
            .iter()
            .filter(|(series, _)| series.contains("_total{"))
            .map(|(series, value)| (series.clone(), *value))
            .collect()
    };
    let mut last = scrape();
    for _ in 0..30 {
        thread::sleep(Duration::from_millis(1_200));
        let now = scrape();
        if counters(&now) == counters(&last) {
            return now;
        }
        last = now;
    }
    panic!("the counters kept moving with no test running");
}

/// `GET /metrics`, checked for the text format, as series → value.
fn scrape() -> HashMap<String, f64> {
    let mut stream = TcpStream::connect(ENDPOINT).expect("metrics endpoint");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: kya\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    parse_exposition(body)
}

/// Parses the text exposition format strictly enough to catch malformed output: every family
/// announced by HELP and TYPE before its samples, every sample `name{labels} value`.
fn parse_exposition(body: &str) -> HashMap<String, f64> {
    let mut typed = Vec::new();
    let mut samples = HashMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            typed.push(name.to_owned());
        } else if line.starts_with("# HELP ") || line.is_empty() {
        } else {
            let (series, value) = line.rsplit_once(' ').expect("sample with a value");
            let name = series.split('{').next().unwrap();
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "{line}"
            );
            assert!(typed.iter().any(|family| family == name), "untyped: {line}");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
            samples.insert(series.to_owned(), value);
        }
    }
    samples
}

fn value(metrics: &HashMap<String, f64>, series: &str) -> f64 {
    *metrics
        .get(series)
        .unwrap_or_else(|| panic!("no series {series}"))
}

fn denied(metrics: &HashMap<String, f64>, agent: &str, kind: &str) -> f64 {
    value(
        metrics,
        &format!(r#"kya_denied_total{{agent="{agent}",kind="{kind}"}}"#),
    )
}

/// Events lost at every stage: over the agent's budget, the ring buffer full, the daemon's
/// queue full.
fn lost(metrics: &HashMap<String, f64>) -> f64 {
    ["agent_budget", "kernel_ring_buffer", "daemon_queue"]
        .iter()
        .map(|stage| {
            value(
                metrics,
                &format!(r#"kya_events_lost_total{{stage="{stage}"}}"#),
            )
        })
        .sum()
}

/// Events lost between two scrapes, by stage, for the test's output.
fn stages(after: &HashMap<String, f64>, before: &HashMap<String, f64>) -> String {
    ["agent_budget", "kernel_ring_buffer", "daemon_queue"]
        .iter()
        .map(|stage| {
            let series = format!(r#"kya_events_lost_total{{stage="{stage}"}}"#);
            format!("{stage} {}", value(after, &series) - value(before, &series))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The pending requests, from `kya pending --json`.
fn pending() -> Vec<serde_json::Value> {
    let out = kya(&["pending", "--json"]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("kya pending --json")
}

#[test]
fn metrics_count_denials_grants_and_processes_exactly() {
    let fixture = Fixture::new();
    plant();
    let _daemon = Daemon::start_clean(&fixture.config);
    let before = settled_scrape();
    for _ in 0..5 {
        assert_eq!(op_exe(&fixture.coder_exe, &["read", SECRET]), Err(EPERM));
    }
    assert!(
        eventually(Duration::from_secs(10), || {
            denied(&scrape(), "coder", "file-open") - denied(&before, "coder", "file-open") >= 5.0
        }),
        "five denials must be counted"
    );
    let after = scrape();
    assert!(
        (denied(&after, "coder", "file-open") - denied(&before, "coder", "file-open") - 5.0).abs()
            < f64::EPSILON,
        "exactly five denials"
    );
    assert!(
        (denied(&after, "ops", "file-open") - denied(&before, "ops", "file-open")).abs()
            < f64::EPSILON
    );
    assert!((value(&after, "kya_pending_requests") - 1.0).abs() < f64::EPSILON);

    let granted = kya(&["grant", "--agent", "coder", "--file", SECRET, "--once"]);
    assert!(granted.status.success(), "{granted:?}");
    assert!(op_exe(&fixture.coder_exe, &["read", SECRET]).is_ok());
    // Counters count since the daemon started (earlier tests' grants included): compare.
    let allowed = r#"kya_allowed_by_grant_total{agent="coder",kind="file-open"}"#;
    assert!(eventually(Duration::from_secs(10), || {
        let now = scrape();
        (value(&now, allowed) - value(&before, allowed) - 1.0).abs() < f64::EPSILON
            && value(&now, r#"kya_grants_active{agent="coder"}"#).abs() < f64::EPSILON
    }));
    let approvals = r#"kya_approvals_total{agent="coder",approver="root"}"#;
    assert!((value(&scrape(), approvals) - value(&before, approvals) - 1.0).abs() < f64::EPSILON);

    let _agent = Probe::start(&fixture.coder_exe, &["self"]);
    assert!(eventually(Duration::from_secs(10), || {
        (value(&scrape(), r#"kya_tagged_processes{agent="coder"}"#) - 1.0).abs() < f64::EPSILON
    }));
    let now = scrape();
    assert!(
        (value(&now, r#"kya_enforcement_active{hook="file_open"}"#) - 1.0).abs() < f64::EPSILON
    );
    assert!((value(&now, r#"kya_map_capacity{map="TASK_TAGS"}"#) - 65_536.0).abs() < f64::EPSILON);
    assert!(value(&now, r#"kya_map_entries{map="TASK_TAGS"}"#) >= 1.0);
    assert!(
        now.keys()
            .any(|series| series.starts_with("kya_build_info{version="))
    );

    // `kya status` tells the same story, and tells a stopped daemon apart.
    let status = kya(&["status", "--json"]);
    assert!(status.status.success(), "{status:?}");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["running"], true);
    assert!(
        status["hooks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|hook| hook["enforcing"] == true)
    );
    let coder = status["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|agent| agent["name"] == "coder")
        .unwrap()
        .clone();
    assert_eq!(coder["tagged_processes"], 1);
    assert_eq!(coder["pending"], 1);
    assert_eq!(status["grants"], 0);
}

#[test]
fn a_flood_loses_events_but_never_a_count() {
    let fixture = Fixture::new();
    plant();
    let daemon = Daemon::start_clean(&fixture.config);
    let before = settled_scrape();
    // With the daemon frozen nothing drains the ring buffer: the agent's budget, then the ring
    // buffer itself, drop most of the flood's events.
    daemon.signal(Signal::SIGSTOP);
    let flood = op_exe(
        &fixture.coder_exe,
        &["flood-open", SECRET, &FLOOD.to_string()],
    );
    daemon.signal(Signal::SIGCONT);
    assert_eq!(flood, Ok(format!("{FLOOD} of {FLOOD}")));
    let counted = |metrics: &HashMap<String, f64>| {
        denied(metrics, "coder", "file-open") - denied(&before, "coder", "file-open")
    };
    assert!(
        eventually(Duration::from_secs(20), || counted(&scrape())
            >= f64::from(FLOOD)),
        "every denial of the flood must be counted"
    );
    let after = scrape();
    assert!(
        (counted(&after) - f64::from(FLOOD)).abs() < f64::EPSILON,
        "exactly the flood"
    );
    assert!(
        lost(&after) - lost(&before) > 0.0,
        "the lost events are counted"
    );
    // Every event either reached the request (repeats fold into its count) or is counted lost
    // at some stage: none vanishes uncounted.
    let mut accounted = (0, 0.0);
    let balanced = eventually(Duration::from_secs(30), || {
        let folded = pending()
            .iter()
            .find(|request| request["agent"] == "coder")
            .and_then(|request| request["count"].as_u64())
            .unwrap_or(0);
        accounted = (folded, lost(&scrape()) - lost(&before));
        #[expect(clippy::cast_precision_loss, reason = "counts fit an f64 well")]
        let total = folded as f64 + accounted.1;
        (total - f64::from(FLOOD)).abs() < f64::EPSILON
    });
    eprintln!(
        "flood of {FLOOD}: {} events reached the request; lost: {}",
        accounted.0,
        stages(&scrape(), &before)
    );
    assert!(
        balanced,
        "{FLOOD} denials: {} events reached the request, {} counted lost",
        accounted.0, accounted.1
    );
}

#[test]
fn another_agents_request_is_approved_promptly_during_a_flood() {
    let fixture = Fixture::new();
    plant();
    let _daemon = Daemon::start_clean(&fixture.config);
    let _listeners: Vec<TcpListener> = ["9090", "9091"]
        .iter()
        .map(|port| TcpListener::bind(format!("127.0.0.4:{port}")).expect("listener"))
        .collect();

    let baseline = approve_ops_request(&fixture, "9090");
    let before = settled_scrape();
    let mut flooder = Command::new(&fixture.coder_exe)
        .args(["flood-open", SECRET, "1000000000"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start the flood");
    thread::sleep(Duration::from_secs(2));
    let during = approve_ops_request(&fixture, "9091");
    let still_flooding = flooder.try_wait().unwrap().is_none();
    let after = scrape();
    flooder.kill().unwrap();
    flooder.wait().unwrap();
    assert!(
        still_flooding,
        "the flood must still run while the approval is made"
    );
    assert!(
        denied(&after, "coder", "file-open") - denied(&before, "coder", "file-open") > 1_000.0,
        "the flood must be a flood"
    );
    assert!(
        lost(&after) - lost(&before) > 0.0,
        "the flood loses events, counted"
    );
    eprintln!(
        "request to approved retry: {baseline:?} without a flood, {during:?} during it; \
         events lost meanwhile: {}",
        stages(&after, &before)
    );
    assert!(
        during < baseline * 5 + Duration::from_secs(2),
        "request to approved retry took {during:?} during the flood, {baseline:?} without"
    );
}

/// Makes agent `ops` be refused a connection to 127.0.0.4:`port`, waits for its pending
/// request, approves it once and retries until the connection goes through; returns how long
/// all of it took.
fn approve_ops_request(fixture: &Fixture, port: &str) -> Duration {
    let started = Instant::now();
    let connect = ["tcp-connect", "127.0.0.4", port];
    assert_eq!(op_exe(&fixture.ops_exe, &connect), Err(EPERM));
    let peer = format!("127.0.0.4:{port}");
    let mut id = None;
    assert!(
        eventually(Duration::from_secs(30), || {
            id = pending()
                .into_iter()
                .find(|request| {
                    request["agent"] == "ops"
                        && request["resource"]
                            .as_str()
                            .is_some_and(|resource| resource.contains(&peer))
                })
                .map(|request| request["id"].as_str().unwrap().to_owned());
            id.is_some()
        }),
        "ops's refused connection to {peer} must become a pending request"
    );
    let out = kya(&["approve", &id.unwrap(), "--once"]);
    assert!(out.status.success(), "{out:?}");
    let retry = op_exe(&fixture.ops_exe, &connect);
    assert!(
        retry.is_ok(),
        "the approved connection goes through: {retry:?}"
    );
    started.elapsed()
}
