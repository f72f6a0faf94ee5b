//! Metrics tests: counters that only advance, label sets fixed at construction, output that
//! follows the text exposition format, and a dashboard and alert rules that only use metrics
//! the daemon exposes.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

const DASHBOARD: &str = include_str!("../../../deploy/grafana/kya-dashboard.json");
const ALERTS: &str = include_str!("../../../deploy/prometheus/kya-alerts.yml");

fn metrics() -> Metrics {
    let coder = vec!["alice".to_owned(), "bob".to_owned()];
    Metrics::new(&[
        AgentLabels {
            name: "coder",
            approvers: &coder,
        },
        AgentLabels {
            name: "ops",
            approvers: &[],
        },
    ])
}

/// The value of the sample `name{labels}` (labels written exactly as rendered), if present.
fn sample(metrics: &Metrics, series: &str) -> Option<f64> {
    metrics.render().lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        Some(
            value
                .parse()
                .unwrap_or_else(|_| panic!("unparsable value in {line:?}")),
        )
    })
}

fn value(metrics: &Metrics, series: &str) -> f64 {
    sample(metrics, series)
        .unwrap_or_else(|| panic!("expected series {series} in:\n{}", metrics.render()))
}

#[test]
fn denied_counter_advances_to_kernel_totals_and_never_back() {
    let metrics = metrics();
    let series = r#"kya_denied_total{agent="coder",kind="connect"}"#;
    assert!(value(&metrics, series).abs() < f64::EPSILON);
    metrics.set_denied_total("coder", DenyKind::Connect, 5);
    assert!((value(&metrics, series) - 5.0).abs() < f64::EPSILON);
    metrics.set_denied_total("coder", DenyKind::Connect, 12);
    assert!((value(&metrics, series) - 12.0).abs() < f64::EPSILON);
    metrics.set_denied_total("coder", DenyKind::Connect, 3);
    assert!(
        (value(&metrics, series) - 12.0).abs() < f64::EPSILON,
        "a lower kernel total must not lower the counter"
    );
    metrics.set_denied_total("coder", DenyKind::Connect, 12);
    assert!((value(&metrics, series) - 12.0).abs() < f64::EPSILON);
    // Other series are untouched.
    assert!(value(&metrics, r#"kya_denied_total{agent="ops",kind="connect"}"#).abs() < 1e-9);
    assert!(value(&metrics, r#"kya_denied_total{agent="coder",kind="send"}"#).abs() < 1e-9);
}

#[test]
fn allowed_and_lost_counters_advance_the_same_way() {
    let metrics = metrics();
    let allowed = r#"kya_allowed_by_grant_total{agent="ops",kind="file-open"}"#;
    metrics.set_allowed_by_grant_total("ops", DenyKind::FileOpen, 7);
    metrics.set_allowed_by_grant_total("ops", DenyKind::FileOpen, 2);
    assert!((value(&metrics, allowed) - 7.0).abs() < f64::EPSILON);

    let lost = r#"kya_events_lost_total{stage="kernel_ring_buffer"}"#;
    metrics.set_events_lost_total(LossStage::KernelRingBuffer, 40);
    metrics.set_events_lost_total(LossStage::KernelRingBuffer, 0);
    assert!((value(&metrics, lost) - 40.0).abs() < f64::EPSILON);
    assert!(value(&metrics, r#"kya_events_lost_total{stage="daemon_queue"}"#).abs() < 1e-9);

    let over_budget = r#"kya_events_lost_total{stage="agent_budget"}"#;
    metrics.set_events_lost_total(LossStage::AgentBudget, 1_000_000);
    metrics.set_events_lost_total(LossStage::AgentBudget, 3);
    assert!((value(&metrics, over_budget) - 1e6).abs() < f64::EPSILON);
    assert!(
        (value(&metrics, lost) - 40.0).abs() < f64::EPSILON,
        "each stage is its own series"
    );
}

#[test]
fn every_loss_stage_has_its_own_label() {
    let labels: BTreeSet<&str> = LossStage::ALL.iter().map(|stage| stage.label()).collect();
    assert_eq!(
        labels,
        BTreeSet::from(["agent_budget", "kernel_ring_buffer", "daemon_queue"])
    );
}

#[test]
fn every_kernel_map_that_can_fill_has_a_capacity_series() {
    for &(name, _, _, capacity) in kya_common::maps::LAYOUTS {
        if [
            kya_common::maps::EVENTS,
            kya_common::maps::EVENTS_LOST,
            kya_common::maps::TAG_ERRORS,
            kya_common::maps::MATCH_SUMMARY,
            kya_common::verdict::RULES_GENERATION,
            kya_common::verdict::VERDICT_SCRATCH,
            // A cache: full is its normal state, and what it forgets is checked in full.
            kya_common::verdict::CLEAR_VERDICTS,
        ]
        .contains(&name)
        {
            // A ring buffer and fixed arrays: they never fill up.
            continue;
        }
        assert!(
            MAP_CAPACITIES.contains(&(name, capacity)),
            "{name} (capacity {capacity}) has no kya_map_capacity series"
        );
    }
}

#[test]
fn concurrent_setters_never_overshoot() {
    let metrics = std::sync::Arc::new(metrics());
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let metrics = std::sync::Arc::clone(&metrics);
            std::thread::spawn(move || {
                for total in 0..=1_000 {
                    metrics.set_denied_total("coder", DenyKind::Unix, total);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a setter thread panicked");
    }
    let total = value(&metrics, r#"kya_denied_total{agent="coder",kind="unix"}"#);
    assert!((total - 1_000.0).abs() < f64::EPSILON, "got {total}");
}

#[test]
fn every_label_combination_is_registered_at_zero() {
    let metrics = metrics();
    let kinds = [
        "file-open",
        "file-access",
        "file-mmap",
        "file-link",
        "file-rename",
        "procfs",
        "connect",
        "send",
        "unix",
        "raw-socket",
        "signal",
        "bpf",
        "file-unlink",
        "file-change",
        "socket",
        "kernel-code",
        "kernel-helper",
        "raw-access",
        "mount",
        "cgroup",
        "foothold",
        "terminal",
        "keyring",
    ];
    assert_eq!(
        deny_kinds().map(kind_name).collect::<Vec<_>>(),
        kinds,
        "every DenyKind is a kind label"
    );
    for agent in ["coder", "ops"] {
        for kind in kinds {
            for family in ["kya_denied_total", "kya_allowed_by_grant_total"] {
                let series = format!(r#"{family}{{agent="{agent}",kind="{kind}"}}"#);
                assert!(value(&metrics, &series).abs() < f64::EPSILON, "{series}");
            }
        }
        for family in ["kya_grants_active", "kya_tagged_processes"] {
            let series = format!(r#"{family}{{agent="{agent}"}}"#);
            assert!(value(&metrics, &series).abs() < f64::EPSILON, "{series}");
        }
        for reason in CONTAINMENT_REASONS {
            let series = format!(r#"kya_agent_contained{{agent="{agent}",reason="{reason}"}}"#);
            assert!(value(&metrics, &series).abs() < f64::EPSILON, "{series}");
        }
        let root = format!(r#"kya_approvals_total{{agent="{agent}",approver="root"}}"#);
        assert!(value(&metrics, &root).abs() < f64::EPSILON, "{root}");
    }
    for approver in ["alice", "bob"] {
        let series = format!(r#"kya_approvals_total{{agent="coder",approver="{approver}"}}"#);
        assert!(value(&metrics, &series).abs() < f64::EPSILON, "{series}");
        let series = format!(r#"kya_approver_gone{{agent="coder",approver="{approver}"}}"#);
        assert!(value(&metrics, &series).abs() < f64::EPSILON, "{series}");
    }
    assert_eq!(
        sample(
            &metrics,
            r#"kya_approver_gone{agent="coder",approver="root"}"#
        ),
        None,
        "root is always living"
    );
    assert_eq!(
        sample(
            &metrics,
            r#"kya_approvals_total{agent="ops",approver="alice"}"#
        ),
        None,
        "alice approves only for coder"
    );
    assert!(value(&metrics, "kya_pending_requests").abs() < f64::EPSILON);
    for stage in LossStage::ALL {
        let series = format!(r#"kya_events_lost_total{{stage="{}"}}"#, stage.label());
        assert!(value(&metrics, &series).abs() < f64::EPSILON, "{series}");
    }
    for &(map, capacity) in MAP_CAPACITIES {
        let entries = format!(r#"kya_map_entries{{map="{map}"}}"#);
        assert!(value(&metrics, &entries).abs() < f64::EPSILON, "{entries}");
        let series = format!(r#"kya_map_capacity{{map="{map}"}}"#);
        assert!(
            (value(&metrics, &series) - f64::from(capacity)).abs() < f64::EPSILON,
            "{series}"
        );
    }
    for hook in LSM_HOOKS.iter().map(|hook| hook.name) {
        let series = format!(r#"kya_enforcement_active{{hook="{hook}"}}"#);
        assert!(value(&metrics, &series).abs() < f64::EPSILON, "{series}");
    }
    let build = format!(
        r#"kya_build_info{{version="{}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert!((value(&metrics, &build) - 1.0).abs() < f64::EPSILON);
}

#[test]
fn series_count_is_fixed_by_the_config() {
    let metrics = metrics();
    let count = |metrics: &Metrics| {
        metrics
            .render()
            .lines()
            .filter(|line| !line.starts_with('#'))
            .count()
    };
    let before = count(&metrics);
    // 2 agents × 23 kinds × 2 counters, 2 × 2 agent gauges, 2 × 3 containment reasons,
    // 3 + 1 approvers, 2 listed approvers' accounts, 1 pending, 3 stages, 21 maps × 2,
    // 41 hooks, 1 build info, 8 internal errors.
    assert_eq!(before, 92 + 4 + 6 + 4 + 2 + 1 + 3 + 42 + 41 + 1 + 8);
    metrics.set_denied_total("unknown-agent-7", DenyKind::Connect, 3);
    metrics.set_allowed_by_grant_total("ghost", DenyKind::Send, 3);
    metrics.set_grants_active("ghost", 1);
    metrics.set_tagged_processes("ghost", 1);
    metrics.set_map_entries("NOT_A_MAP", 1);
    metrics.set_enforcement_active("not_a_hook", true);
    metrics.record_approval("ghost", "alice");
    metrics.set_contained(&BTreeMap::from([("ghost".to_owned(), "owner_locked")]));
    metrics.set_approver_gone("coder", "mallory", true);
    metrics.set_approver_gone("ghost", "alice", true);
    assert_eq!(
        count(&metrics),
        before,
        "labels outside the configured sets must not create series:\n{}",
        metrics.render()
    );
}

#[test]
fn a_contained_agent_has_its_reason_at_one_and_the_others_at_zero() {
    let metrics = metrics();
    let series =
        |reason: &str| format!(r#"kya_agent_contained{{agent="coder",reason="{reason}"}}"#);
    metrics.set_contained(&BTreeMap::from([("coder".to_owned(), "owner_locked")]));
    assert!((value(&metrics, &series("owner_locked")) - 1.0).abs() < f64::EPSILON);
    assert!(value(&metrics, &series("owner_missing")).abs() < f64::EPSILON);
    metrics.set_contained(&BTreeMap::new());
    assert!(value(&metrics, &series("owner_locked")).abs() < f64::EPSILON);
    metrics.set_approver_gone("coder", "bob", true);
    let bob = r#"kya_approver_gone{agent="coder",approver="bob"}"#;
    assert!((value(&metrics, bob) - 1.0).abs() < f64::EPSILON);
}

#[test]
fn approvals_by_unlisted_users_share_one_series() {
    let metrics = metrics();
    metrics.record_approval("coder", "alice");
    metrics.record_approval("coder", "alice");
    metrics.record_approval("coder", ROOT_APPROVER);
    metrics.record_approval("coder", "mallory");
    metrics.record_approval("coder", "eve");
    let series =
        |approver: &str| format!(r#"kya_approvals_total{{agent="coder",approver="{approver}"}}"#);
    assert!((value(&metrics, &series("alice")) - 2.0).abs() < f64::EPSILON);
    assert!((value(&metrics, &series("root")) - 1.0).abs() < f64::EPSILON);
    assert!((value(&metrics, &series(UNLISTED_APPROVER)) - 2.0).abs() < f64::EPSILON);
    assert_eq!(sample(&metrics, &series("mallory")), None);
    assert!(
        UNLISTED_APPROVER
            .chars()
            .any(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "_-$".contains(c))),
        "the unlisted label must not be a possible user name ([a-z_][a-z0-9_-]*[$]?)"
    );
}

#[test]
fn gauges_are_set() {
    let metrics = metrics();
    metrics.set_grants_active("coder", 3);
    metrics.set_grants_active("coder", 1);
    metrics.set_pending_requests(4);
    metrics.set_tagged_processes("ops", 17);
    metrics.set_map_entries(maps::TASK_TAGS, 1234);
    metrics.set_enforcement_active("file_open", true);
    metrics.set_enforcement_active("socket_connect", true);
    metrics.set_enforcement_active("socket_connect", false);
    for (series, expected) in [
        (r#"kya_grants_active{agent="coder"}"#, 1.0),
        ("kya_pending_requests", 4.0),
        (r#"kya_tagged_processes{agent="ops"}"#, 17.0),
        (r#"kya_map_entries{map="TASK_TAGS"}"#, 1234.0),
        (r#"kya_enforcement_active{hook="file_open"}"#, 1.0),
        (r#"kya_enforcement_active{hook="socket_connect"}"#, 0.0),
    ] {
        assert!(
            (value(&metrics, series) - expected).abs() < f64::EPSILON,
            "{series}: expected {expected}"
        );
    }
    metrics.set_pending_requests(u64::MAX);
    assert!((value(&metrics, "kya_pending_requests") - 9.223_372_036_854_776e18).abs() < 1e4);
    metrics.forget_enforcement("file_truncate");
    assert!(
        !metrics
            .render()
            .contains(r#"kya_enforcement_active{hook="file_truncate"}"#),
        "an optional hook the kernel lacks has no series, so no alert reads it as 0"
    );
}

#[test]
fn for_config_takes_the_agents_and_their_approvers() {
    let config = Config::from_toml_str(
        "[[agents]]\nname = \"coder\"\nowner = \"alice\"\napprovers = [\"carol\"]\n",
        std::path::Path::new("kya.toml"),
    )
    .expect("a valid config");
    let metrics = Metrics::for_config(&config);
    assert!(
        value(
            &metrics,
            r#"kya_approvals_total{agent="coder",approver="carol"}"#
        )
        .abs()
            < f64::EPSILON
    );
    assert!(
        value(
            &metrics,
            r#"kya_denied_total{agent="coder",kind="raw-socket"}"#
        )
        .abs()
            < f64::EPSILON
    );
}

/// What an exposition-format check found: every family's type and its samples' names.
#[derive(Debug, Default)]
struct Exposition {
    types: BTreeMap<String, String>,
    samples: BTreeSet<String>,
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// The labels at the start of `text` (from `{` to `}`, if any) as `name="value"` with the value
/// unescaped, and what follows them. Panics, naming `at`, on a malformed label.
fn parse_labels<'a>(text: &'a str, at: &str) -> (Vec<String>, &'a str) {
    let mut labels = Vec::new();
    let Some(mut rest) = text.strip_prefix('{') else {
        return (labels, text);
    };
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return (labels, after);
        }
        let (label, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("{at}: label without =\""));
        assert!(is_label_name(label), "{at}: invalid label name {label:?}");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                None => panic!("{at}: unterminated label value"),
                Some((index, '"')) => break index,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => panic!("{at}: invalid escape {other:?}"),
                },
                Some((_, '\n')) => panic!("{at}: raw newline in a label value"),
                Some((_, c)) => value.push(c),
            }
        };
        labels.push(format!("{label}={value:?}"));
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// Checks `text` against the text exposition format 0.0.4 as Prometheus reads it, more
/// strictly than needed: HELP and TYPE before each family's samples, valid names, label values
/// with only `\\`, `\"` and `\n` escapes, numeric values, no repeated series, counters named
/// `_total`. Panics naming the offending line.
fn check_exposition(text: &str) -> Exposition {
    let mut found = Exposition::default();
    let mut helps = BTreeSet::new();
    let mut series = BTreeSet::new();
    assert!(text.ends_with('\n'), "output must end with a newline");
    for (number, line) in text.lines().enumerate() {
        let at = format!("line {}: {line:?}", number + 1);
        assert!(!line.is_empty(), "{at}: empty line");
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            let (keyword, name, rest) = (words.next(), words.next(), words.next());
            let name = name.unwrap_or_else(|| panic!("{at}: comment without a metric name"));
            assert!(is_metric_name(name), "{at}: invalid metric name");
            match keyword {
                Some("HELP") => {
                    let help = rest.unwrap_or_else(|| panic!("{at}: empty HELP"));
                    assert!(!help.trim().is_empty(), "{at}: empty HELP");
                    assert!(helps.insert(name.to_owned()), "{at}: second HELP");
                }
                Some("TYPE") => {
                    let kind = rest.unwrap_or_else(|| panic!("{at}: TYPE without a type"));
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "{at}: unknown type"
                    );
                    assert!(helps.contains(name), "{at}: TYPE before HELP");
                    assert!(
                        found
                            .types
                            .insert(name.to_owned(), kind.to_owned())
                            .is_none(),
                        "{at}: second TYPE"
                    );
                    if kind == "counter" {
                        assert!(name.ends_with("_total"), "{at}: counter not named _total");
                    }
                }
                _ => panic!("{at}: comment that is neither HELP nor TYPE"),
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("{at}: sample without a value"));
        let name = &line[..name_end];
        assert!(is_metric_name(name), "{at}: invalid metric name");
        assert!(
            found.types.contains_key(name) && helps.contains(name),
            "{at}: sample before its family's HELP and TYPE"
        );
        let (labels, rest) = parse_labels(&line[name_end..], &at);
        let value = rest
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("{at}: no space before the value"));
        let value = value.split(' ').next().unwrap_or_default();
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "{at}: value {value:?} is not a number"
        );
        assert!(
            series.insert(format!("{name}{{{}}}", labels.join(","))),
            "{at}: repeated series"
        );
        found.samples.insert(name.to_owned());
    }
    for family in found.types.keys() {
        assert!(
            found.samples.contains(family),
            "family {family} has HELP and TYPE but no sample"
        );
    }
    found
}

/// Every metric family the daemon exposes, with its type.
fn exposed() -> BTreeMap<String, String> {
    check_exposition(&metrics().render()).types
}

#[test]
fn render_follows_the_exposition_format() {
    let metrics = metrics();
    metrics.set_denied_total("coder", DenyKind::FileOpen, 3);
    metrics.record_approval("ops", "root");
    let found = check_exposition(&metrics.render());
    let expected: BTreeMap<String, String> = [
        ("kya_agent_contained", "gauge"),
        ("kya_allowed_by_grant_total", "counter"),
        ("kya_approvals_total", "counter"),
        ("kya_approver_gone", "gauge"),
        ("kya_build_info", "gauge"),
        ("kya_denied_total", "counter"),
        ("kya_enforcement_active", "gauge"),
        ("kya_events_lost_total", "counter"),
        ("kya_grants_active", "gauge"),
        ("kya_internal_errors_total", "counter"),
        ("kya_map_capacity", "gauge"),
        ("kya_map_entries", "gauge"),
        ("kya_pending_requests", "gauge"),
        ("kya_tagged_processes", "gauge"),
    ]
    .into_iter()
    .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
    .collect();
    assert_eq!(found.types, expected);
}

#[test]
fn label_values_are_escaped() {
    // Config validation keeps agent names plain; escaping must hold all the same.
    let metrics = Metrics::new(&[AgentLabels {
        name: "we\"ird\\na\nme",
        approvers: &[],
    }]);
    let text = metrics.render();
    assert!(
        text.contains(r#"kya_grants_active{agent="we\"ird\\na\nme"} 0"#),
        "{text}"
    );
    check_exposition(&text);
}

#[test]
fn the_checker_rejects_broken_exposition() {
    let good = "# HELP a_total x\n# TYPE a_total counter\na_total{l=\"v\"} 1\n";
    check_exposition(good);
    for bad in [
        "a_total 1\n",
        "# HELP a_total x\n# TYPE a_total counter\n1a_total 1\n",
        "# HELP a_total x\n# TYPE a_total counter\na_total{l=\"v\\x\"} 1\n",
        "# HELP a_total x\n# TYPE a_total counter\na_total{l=\"v\"} one\n",
        "# HELP a x\n# TYPE a counter\na 1\n",
        "# HELP a_total x\n# TYPE a_total counter\na_total 1\na_total 2\n",
        "# HELP a_total x\n# TYPE a_total counter\na_total{l=\"v} 1\n",
    ] {
        let outcome = std::panic::catch_unwind(|| check_exposition(bad));
        assert!(outcome.is_err(), "the checker accepted {bad:?}");
    }
}

/// The `kya_*` metric names in `text`: identifiers starting `kya_`, not part of a longer name
/// (so `kya:recording_rules` and `job="kya_..."`-free text are not read as metrics).
fn metric_names(text: &str) -> BTreeSet<String> {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    for (start, _) in text.match_indices("kya_") {
        if text[..start].chars().next_back().is_some_and(is_name_char) {
            continue;
        }
        let name: String = text[start..]
            .chars()
            .take_while(|&c| c.is_ascii_lowercase() || c == '_')
            .collect();
        names.insert(name);
    }
    names
}

/// Every panel query (strings under an `expr` key) and every template variable's query (its
/// `definition`), anywhere in the dashboard.
fn dashboard_queries(value: &serde_json::Value, in_templating: bool, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(object) => {
            for (key, child) in object {
                match (key.as_str(), child) {
                    ("expr", serde_json::Value::String(expr)) => out.push(expr.clone()),
                    ("definition", serde_json::Value::String(query)) if in_templating => {
                        out.push(query.clone());
                    }
                    _ => dashboard_queries(child, in_templating || key == "templating", out),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                dashboard_queries(item, in_templating, out);
            }
        }
        _ => {}
    }
}

/// The text of every `expr:` in a Prometheus rules file: a plain scalar on the same line, or a
/// `|`/`>` block scalar on the lines indented below it.
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut exprs = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        let indent = line.len() - line.trim_start().len();
        index += 1;
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if rest.starts_with('|') || rest.starts_with('>') {
            let mut block = String::new();
            while index < lines.len() {
                let next = lines[index];
                let next_indent = next.len() - next.trim_start().len();
                if !next.trim().is_empty() && next_indent <= indent {
                    break;
                }
                block.push_str(next.trim());
                block.push('\n');
                index += 1;
            }
            exprs.push(block);
        } else {
            exprs.push(rest.trim_matches(['\'', '"']).to_owned());
        }
    }
    exprs
}

#[test]
fn dashboard_uses_only_exposed_metrics_and_shows_them_all() {
    let dashboard: serde_json::Value =
        serde_json::from_str(DASHBOARD).expect("the dashboard is valid JSON");
    let mut queries = Vec::new();
    dashboard_queries(&dashboard, false, &mut queries);
    assert!(
        queries.len() >= 10,
        "expected the dashboard's queries, got {queries:?}"
    );
    let exposed = exposed();
    let mut used = BTreeSet::new();
    for query in &queries {
        let names = metric_names(query);
        assert!(!names.is_empty(), "query uses no kya metric: {query}");
        for name in names {
            assert!(
                exposed.contains_key(&name),
                "the dashboard queries {name}, which kya-agent does not expose: {query}"
            );
            used.insert(name);
        }
    }
    for name in exposed.keys() {
        assert!(
            used.contains(name),
            "the dashboard shows no panel for {name}"
        );
    }
}

#[test]
fn alert_rules_use_only_exposed_metrics() {
    let exprs = rule_exprs(ALERTS);
    let alerts = ALERTS.matches("- alert:").count();
    let records = ALERTS.matches("- record:").count();
    assert_eq!(
        exprs.len(),
        alerts + records,
        "expected one expr per rule, got {exprs:#?}"
    );
    assert!(alerts >= 5, "expected the alert rules, found {alerts}");
    let exposed = exposed();
    for expr in &exprs {
        for name in metric_names(expr) {
            assert!(
                exposed.contains_key(&name),
                "an alert rule uses {name}, which kya-agent does not expose: {expr}"
            );
        }
    }
    // The whole file, annotations included, names no metric that does not exist.
    for name in metric_names(ALERTS) {
        assert!(
            exposed.contains_key(&name),
            "the rules file mentions {name}"
        );
    }
    for required in [
        "kya_denied_total",
        "kya_events_lost_total",
        "kya_enforcement_active",
        "kya_build_info",
        "kya_map_entries",
        "kya_map_capacity",
        "kya_approvals_total",
        "kya_agent_contained",
        "kya_approver_gone",
    ] {
        assert!(
            exprs
                .iter()
                .any(|expr| metric_names(expr).contains(required)),
            "no alert rule uses {required}"
        );
    }
}

#[test]
fn rule_exprs_reads_plain_and_block_scalars() {
    let yaml = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: kya_a > 0\n        \
                for: 1m\n      - alert: B\n        expr: |\n          sum(kya_b)\n            > 1\n\
                \n        labels:\n          x: y\n";
    assert_eq!(rule_exprs(yaml), ["kya_a > 0", "sum(kya_b)\n> 1\n\n"]);
    assert_eq!(
        metric_names("rate(kya_denied_total[5m]) and kya:departed_approver and x_kya_y"),
        BTreeSet::from(["kya_denied_total".to_owned()])
    );
}
