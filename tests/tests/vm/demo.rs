//! The demo that `cargo xtask run` shows (xtask/src/demo.sh), run as it is there and checked
//! step by step: each caption's section must show what the caption says happened.
use std::{collections::BTreeMap, process::Command};

use kya_tests::{SCRATCH, no_daemon, require_vm};

const REFUSED: &str = "Operation not permitted";
const SECRET: &str = "demo-secret-key";
const PAGE: &str = "hello from 127.0.0.5:8080";

/// The demo's output cut at its captions (`== 3. kya events: ...`), keyed by step number.
fn steps(output: &str) -> BTreeMap<u32, String> {
    output
        .split("\n== ")
        .skip(1)
        .filter_map(|section| {
            let (number, text) = section.split_once(". ")?;
            Some((number.parse().ok()?, text.to_owned()))
        })
        .collect()
}

/// The output of each command in `step` (`demo$ CMD` lines start one), in order.
fn commands(step: &str) -> Vec<(String, String)> {
    step.split("demo$ ")
        .skip(1)
        .map(|command| {
            let (line, output) = command.split_once('\n').unwrap_or((command, ""));
            (line.to_owned(), output.to_owned())
        })
        .collect()
}

fn assert_shows(step: &str, what: &str, expected: &str) {
    assert!(
        step.contains(expected),
        "{what}: expected `{expected}` in:\n{step}"
    );
}

#[test]
fn the_demo_shows_refusals_requests_approvals_that_end_and_the_counters() {
    require_vm();
    // The demo starts (and unloads) its own daemon.
    no_daemon();
    let output = Command::new("sh")
        .arg("/kya/demo.sh")
        .env("KYA_DEMO_DIR", format!("{SCRATCH}/demo"))
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the demo failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // Shown when a check below fails.
    println!("{stdout}");
    assert!(stdout.ends_with("== The demo ended.\n"), "{stdout}");
    let steps = steps(&stdout);
    assert_eq!(
        steps.keys().copied().collect::<Vec<_>>(),
        (1..=7).collect::<Vec<_>>(),
        "{stdout}"
    );

    // 1: the human reads the key, the agent sees EPERM.
    let read = commands(&steps[&1]);
    assert_eq!(read.len(), 2, "{}", steps[&1]);
    assert_eq!(read[0].0, "cat ~/.aws/credentials");
    assert_shows(&read[0].1, "a human's read", SECRET);
    assert_eq!(read[1].0, "kya run --agent coder -- cat ~/.aws/credentials");
    assert_shows(&read[1].1, "the agent's read", REFUSED);
    assert!(!read[1].1.contains(SECRET), "{}", read[1].1);

    // 2: the same for a connection.
    let reach = commands(&steps[&2]);
    assert_shows(&reach[0].1, "a human's connection", PAGE);
    assert_shows(&reach[1].1, "the agent's connection", REFUSED);
    assert!(!reach[1].1.contains(PAGE), "{}", reach[1].1);

    // 3 and 4: the refusals as events, then as pending requests.
    for (step, what) in [(3, "kya events"), (4, "kya pending")] {
        let text = &steps[&step];
        assert_shows(text, what, ".aws/credentials");
        assert_shows(text, what, "127.0.0.5:8080");
        assert_shows(text, what, "agent=coder");
    }
    assert_shows(&steps[&3], "kya events", "file-open");
    assert_shows(&steps[&3], "kya events", "connect");
    let pending = commands(&steps[&4]);
    assert!(
        pending[0].1.lines().any(|line| line.starts_with("r1 ")),
        "{}",
        steps[&4]
    );

    // 5: once means once.
    let once = commands(&steps[&5]);
    assert_eq!(once.len(), 3, "{}", steps[&5]);
    assert_shows(&once[0].1, "kya approve --once", "approved by root");
    assert_shows(&once[1].1, "the approved read", SECRET);
    assert_shows(&once[2].1, "the read after it", REFUSED);
    assert!(!once[2].1.contains(SECRET), "{}", once[2].1);

    // 6: a timed grant lets the agent through until it ends.
    let timed = commands(&steps[&6]);
    assert_eq!(timed.len(), 5, "{}", steps[&6]);
    assert_shows(&timed[1].1, "kya grants", "connect 127.0.0.5:8080");
    assert_shows(&timed[2].1, "a connection under the grant", PAGE);
    assert_eq!(timed[3].0, "sleep 11");
    assert_shows(&timed[4].1, "a connection after the grant", REFUSED);

    // 7: the counters, only the series above 0.
    let metrics = &steps[&7];
    for series in [
        "kya_denied_total{agent=\"coder\",kind=\"file-open\"}",
        "kya_denied_total{agent=\"coder\",kind=\"connect\"}",
        "kya_allowed_by_grant_total{agent=\"coder\"",
        "kya_approvals_total{",
    ] {
        assert_shows(metrics, "/metrics", series);
    }
    assert!(
        !metrics.lines().any(|line| line.ends_with(" 0")),
        "{metrics}"
    );
}
