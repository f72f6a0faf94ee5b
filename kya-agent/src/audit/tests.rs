//! The trail's promises: the chain survives a restart, a torn write is dropped, and `verify`
//! notices every kind of tampering it claims to.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
};

use serde::Serialize;
use serde_json::json;

use super::*;

/// A directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "kya-audit-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        Self(path)
    }

    fn log(&self) -> PathBuf {
        self.0.join("state").join("audit.jsonl")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[derive(Serialize)]
struct Approval<'a> {
    event: &'a str,
    agent: &'a str,
    approver: &'a str,
}

/// A trail of `count` records at a fresh path; returns the dir and the head.
fn trail(count: u64) -> (TempDir, AuditHead) {
    let dir = TempDir::new();
    let mut log = AuditLog::open(&dir.log()).expect("a new trail opens");
    for n in 0..count {
        log.append(&json!({"event": "grant", "n": n}))
            .expect("appending to a new trail works");
    }
    let head = log.head();
    (dir, head)
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .expect("the trail is readable")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    fs::write(path, lines.join("\n") + "\n").expect("the trail is writable");
}

fn problem_lines(report: &VerifyReport) -> Vec<Option<u64>> {
    report.problems.iter().map(|problem| problem.line).collect()
}

#[test]
fn an_empty_trail_has_the_zero_head() {
    let dir = TempDir::new();
    let log = AuditLog::open(&dir.log()).expect("a new trail opens");
    assert_eq!(log.head(), AuditHead::empty());
    assert_eq!(log.head().hash, ZERO_HASH);
    assert!(
        verify(&dir.log(), None).is_intact(),
        "an empty trail is intact"
    );
}

#[test]
fn a_new_trail_is_private() {
    let dir = TempDir::new();
    AuditLog::open(&dir.log()).expect("a new trail opens");
    let mode = |path: &Path| fs::metadata(path).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&dir.log()), 0o600, "the trail file is 0600");
    assert_eq!(
        mode(dir.log().parent().unwrap()),
        0o700,
        "its directory is 0700"
    );
}

#[test]
fn the_log_fields_come_first_and_the_first_prev_is_zeros() {
    let dir = TempDir::new();
    let mut log = AuditLog::open(&dir.log()).expect("a new trail opens");
    let record = log
        .append(&Approval {
            event: "approve",
            agent: "coder",
            approver: "alice",
        })
        .expect("append works");
    assert_eq!((record.seq, record.prev.as_str()), (1, ZERO_HASH));
    let line = &lines(&dir.log())[0];
    let expected_start = format!(
        r#"{{"seq":1,"time_ms":{},"prev":"{ZERO_HASH}","#,
        record.time_ms
    );
    assert!(
        line.starts_with(&expected_start),
        "line starts with the log's fields: {line}"
    );
    assert_eq!(
        record.hash,
        line_hash(line.as_bytes()),
        "the record's hash is its line's"
    );
    assert_eq!(record.body["approver"], "alice");
}

#[test]
fn reopening_continues_the_chain() {
    let (dir, head) = trail(3);
    assert_eq!(head.seq, 3);
    let mut log = AuditLog::open(&dir.log()).expect("an existing trail reopens");
    assert_eq!(log.head(), head, "reopening learns the head from the file");
    let record = log
        .append(&json!({"event": "revoke"}))
        .expect("append works");
    assert_eq!((record.seq, &record.prev), (4, &head.hash));
    drop(log);

    let records = read_records(&dir.log()).expect("the trail reads back");
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    for pair in records.windows(2) {
        assert_eq!(
            pair[1].prev, pair[0].hash,
            "each record chains to the one before"
        );
    }
    let report = verify(&dir.log(), Some(&record_head(&records[3])));
    assert!(report.is_intact(), "problems: {:?}", report.problems);
    assert_eq!((report.lines, report.good), (4, 4));
}

fn record_head(record: &AuditRecord) -> AuditHead {
    AuditHead {
        seq: record.seq,
        hash: record.hash.clone(),
    }
}

#[test]
fn a_torn_last_line_is_dropped_on_open() {
    let (dir, head) = trail(2);
    let intact_len = fs::metadata(dir.log()).unwrap().len();
    let mut file = fs::OpenOptions::new().append(true).open(dir.log()).unwrap();
    std::io::Write::write_all(&mut file, br#"{"seq":3,"time_ms":17"#).unwrap();
    drop(file);

    let report = verify(&dir.log(), None);
    assert!(
        report.is_intact(),
        "a torn tail is not damage: {:?}",
        report.problems
    );
    assert_eq!(report.torn_tail, Some(21));

    let mut log = AuditLog::open(&dir.log()).expect("a trail with a torn tail opens");
    assert_eq!(
        fs::metadata(dir.log()).unwrap().len(),
        intact_len,
        "the torn line is gone"
    );
    assert_eq!(log.head(), head);
    assert_eq!(log.append(&json!({})).expect("append works").seq, 3);
    let report = verify(&dir.log(), None);
    assert!(
        report.is_intact() && report.torn_tail.is_none(),
        "{report:?}"
    );
    assert_eq!(report.good, 3);
}

#[test]
fn a_good_trail_verifies_with_its_anchor() {
    let (dir, head) = trail(5);
    let report = verify(&dir.log(), Some(&head));
    assert!(report.is_intact(), "problems: {:?}", report.problems);
    assert_eq!((report.lines, report.good, report.head.seq), (5, 5, 5));
}

#[test]
fn an_anchor_behind_the_head_is_fine() {
    // The daemon saves its state after appending, so the trail may run ahead of the anchor.
    let (dir, _) = trail(3);
    let records = read_records(&dir.log()).unwrap();
    assert!(verify(&dir.log(), Some(&record_head(&records[1]))).is_intact());
}

#[test]
fn verify_catches_an_edited_field() {
    let (dir, head) = trail(4);
    let mut text = lines(&dir.log());
    text[1] = text[1].replace(r#""event":"grant""#, r#""event":"deny""#);
    write_lines(&dir.log(), &text);
    let report = verify(&dir.log(), Some(&head));
    assert_eq!(problem_lines(&report), [Some(3)], "{:?}", report.problems);
    assert_eq!(
        report.problems[0].to_string(),
        "line 3 (seq 3): prev does not match line 2: the record before it was edited, removed or moved"
    );
}

#[test]
fn verify_catches_an_edited_last_record_only_with_the_anchor() {
    let (dir, head) = trail(3);
    let mut text = lines(&dir.log());
    text[2] = text[2].replace(r#""n":2"#, r#""n":9"#);
    write_lines(&dir.log(), &text);
    assert!(
        verify(&dir.log(), None).is_intact(),
        "the chain alone cannot see this"
    );
    let report = verify(&dir.log(), Some(&head));
    assert!(
        matches!(
            report.problems[..],
            [Problem {
                line: Some(3),
                kind: ProblemKind::AnchorMismatch { .. },
                ..
            }]
        ),
        "{:?}",
        report.problems
    );
}

#[test]
fn verify_catches_a_removed_middle_record() {
    let (dir, head) = trail(4);
    let mut text = lines(&dir.log());
    text.remove(1);
    write_lines(&dir.log(), &text);
    let report = verify(&dir.log(), Some(&head));
    assert!(!report.is_intact());
    assert!(report.problems.iter().any(|p| p.line == Some(2)
        && p.kind
            == ProblemKind::SeqMismatch {
                found: 3,
                expected: 2
            }));
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.line == Some(2) && p.kind == ProblemKind::PrevMismatch { previous_line: 1 })
    );
    assert_eq!(report.good, 2, "lines 1 and 3 are still good");
}

#[test]
fn verify_catches_a_removed_first_record() {
    let (dir, _) = trail(3);
    let mut text = lines(&dir.log());
    text.remove(0);
    write_lines(&dir.log(), &text);
    let report = verify(&dir.log(), None);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::FirstPrevNotZero)
    );
}

#[test]
fn verify_catches_a_removed_last_record_with_the_anchor() {
    let (dir, head) = trail(4);
    let mut text = lines(&dir.log());
    text.pop();
    write_lines(&dir.log(), &text);
    assert!(
        verify(&dir.log(), None).is_intact(),
        "the chain alone cannot see this"
    );
    let report = verify(&dir.log(), Some(&head));
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(
        report.problems[0].to_string(),
        "the anchor names seq 4 but the trail ends at seq 3: records at the end were removed"
    );
}

#[test]
fn verify_catches_two_swapped_records() {
    let (dir, head) = trail(5);
    let mut text = lines(&dir.log());
    text.swap(2, 3);
    write_lines(&dir.log(), &text);
    let report = verify(&dir.log(), Some(&head));
    let mut flagged = problem_lines(&report);
    flagged.dedup();
    assert_eq!(
        flagged,
        [Some(3), Some(4), Some(5)],
        "{:?}",
        report.problems
    );
}

#[test]
fn verify_catches_a_copied_record() {
    let (dir, head) = trail(3);
    let mut text = lines(&dir.log());
    text.insert(2, text[1].clone());
    write_lines(&dir.log(), &text);
    let report = verify(&dir.log(), Some(&head));
    assert!(
        report.problems.iter().any(|p| p.line == Some(3)),
        "{:?}",
        report.problems
    );
}

#[test]
fn verify_catches_a_forged_record_chained_to_the_one_before() {
    // A forger can chain the inserted line to its predecessor, but not the next line to it.
    let (dir, head) = trail(3);
    let mut text = lines(&dir.log());
    let forged = format!(
        r#"{{"seq":3,"time_ms":1,"prev":"{}","event":"grant","n":99}}"#,
        line_hash(text[1].as_bytes())
    );
    text.insert(2, forged);
    write_lines(&dir.log(), &text);
    let report = verify(&dir.log(), Some(&head));
    assert_eq!(
        report.good, 3,
        "lines 1, 2 and the forgery itself look fine"
    );
    assert!(
        report.problems.iter().all(|p| p.line == Some(4)),
        "{:?}",
        report.problems
    );
    assert!(!report.is_intact());
}

#[test]
fn a_damaged_trail_still_opens_and_new_records_chain_to_its_last_line() {
    let (dir, _) = trail(3);
    let mut text = lines(&dir.log());
    text[1] = "this is not json".to_owned();
    write_lines(&dir.log(), &text);
    let mut log = AuditLog::open(&dir.log()).expect("a damaged trail still opens");
    let record = log
        .append(&json!({"event": "after"}))
        .expect("append works");
    assert_eq!(record.seq, 4);
    let report = verify(&dir.log(), None);
    assert_eq!(
        problem_lines(&report),
        [Some(2), Some(3)],
        "{:?}",
        report.problems
    );
    assert!(matches!(
        report.problems[0].kind,
        ProblemKind::BadLine(LineProblem::NotJson(_))
    ));

    let error = read_records(&dir.log()).expect_err("replay refuses a damaged trail");
    assert!(
        matches!(error, AuditError::BadLine { line: 2, .. }),
        "the error names line 2: {error:?}"
    );
}

#[test]
fn a_damaged_last_line_still_leaves_a_next_seq_verify_accepts() {
    let (dir, _) = trail(2);
    let mut text = lines(&dir.log());
    text.push("[1, 2]".to_owned());
    write_lines(&dir.log(), &text);
    let mut log = AuditLog::open(&dir.log()).expect("a damaged trail still opens");
    assert_eq!(log.append(&json!({})).expect("append works").seq, 4);
    let report = verify(&dir.log(), None);
    assert_eq!(problem_lines(&report), [Some(3)], "{:?}", report.problems);
}

#[test]
fn bodies_that_are_not_objects_or_use_the_log_fields_are_refused() {
    let dir = TempDir::new();
    let mut log = AuditLog::open(&dir.log()).expect("a new trail opens");
    assert!(matches!(
        log.append(&[1, 2]),
        Err(AuditError::BodyNotObject { found: "array", .. })
    ));
    assert!(matches!(
        log.append(&json!({"prev": "x"})),
        Err(AuditError::ReservedKey { key: "prev", .. })
    ));
    assert_eq!(log.head().seq, 0, "nothing was written");
    assert_eq!(fs::metadata(dir.log()).unwrap().len(), 0);
}

#[test]
fn a_second_writer_is_refused() {
    let dir = TempDir::new();
    let _log = AuditLog::open(&dir.log()).expect("a new trail opens");
    let error = AuditLog::open(&dir.log()).expect_err("a second writer is refused");
    assert!(matches!(error, AuditError::Locked { .. }), "{error:?}");
}

#[test]
fn a_missing_trail_is_reported_as_unreadable() {
    let dir = TempDir::new();
    let report = verify(&dir.log(), None);
    assert!(report.read_failed() && !report.is_intact());
}

#[test]
fn the_head_serializes_as_seq_and_hash() {
    let head = AuditHead {
        seq: 7,
        hash: "ab".repeat(32),
    };
    let text = serde_json::to_string(&head).unwrap();
    assert_eq!(text, format!(r#"{{"seq":7,"hash":"{}"}}"#, "ab".repeat(32)));
    assert_eq!(serde_json::from_str::<AuditHead>(&text).unwrap(), head);
}

#[test]
fn the_anchor_is_read_from_the_state_file() {
    let dir = TempDir::new();
    fs::create_dir_all(&dir.0).unwrap();
    let state = dir.0.join("state.json");
    assert_eq!(read_anchor(&state).unwrap(), Anchor::NoStateFile);
    fs::write(&state, r#"{"grants": []}"#).unwrap();
    assert_eq!(read_anchor(&state).unwrap(), Anchor::NoHead);
    fs::write(
        &state,
        format!(r#"{{"audit_head": {{"seq": 2, "hash": "{ZERO_HASH}"}}}}"#),
    )
    .unwrap();
    assert_eq!(
        read_anchor(&state).unwrap(),
        Anchor::Head(AuditHead {
            seq: 2,
            hash: ZERO_HASH.to_owned()
        })
    );
    fs::write(&state, r#"{"audit_head": 3}"#).unwrap();
    assert!(matches!(
        read_anchor(&state),
        Err(AuditError::BadState { .. })
    ));
}
