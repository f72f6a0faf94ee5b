//! `kya audit verify [--state-dir DIR]`: check the audit trail on this host's disk.
//!
//! Reads the files directly rather than asking the daemon, so a trail can be checked while the
//! daemon is stopped, or on a copy taken elsewhere.
use std::{
    io,
    path::{Path, PathBuf},
    process::ExitCode,
};

use kya_agent::{
    audit::{self, Anchor, AuditHead, VerifyReport},
    error_chain,
    grants::ActiveGrant,
    paths::{AUDIT_LOG_FILE, STATE_DIR, STATE_FILE},
    text::escape_lines,
};

/// Exit status when the trail could not be checked at all (missing or unreadable file).
const CANNOT_CHECK: u8 = 2;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Check that no record was edited, removed, inserted or reordered.
    ///
    /// Exits 0 if the trail is intact, 1 if it is not, 2 if it could not be read.
    Verify(VerifyArgs),
    /// Show the approvals and grants in the trail: who decided, how they proved it (uid,
    /// ssh-key with the key's fingerprint, or totp), for which agent and resource.
    Show(VerifyArgs),
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The daemon's state directory, holding the trail and the state file that anchors it.
    #[arg(long, value_name = "DIR", default_value = STATE_DIR, value_hint = clap::ValueHint::DirPath)]
    state_dir: PathBuf,
}

pub fn run(args: &Args) -> ExitCode {
    match &args.command {
        Command::Verify(args) => verify(args),
        Command::Show(args) => show(args),
    }
}

fn show(args: &VerifyArgs) -> ExitCode {
    let trail = args.state_dir.join(AUDIT_LOG_FILE);
    let text = match std::fs::read_to_string(&trail) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("{}", missing_trail(&trail, &error));
            return ExitCode::from(CANNOT_CHECK);
        }
    };
    for line in text.lines() {
        let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(shown) = decision_line(&record) {
            println!("{}", escape_lines(&shown));
        }
    }
    ExitCode::SUCCESS
}

/// One approval or grant of the trail as a line; `None` for other records.
fn decision_line(record: &serde_json::Value) -> Option<String> {
    let event = record["event"].as_str()?;
    if event != "approve" && event != "grant" {
        return None;
    }
    let grant: ActiveGrant = serde_json::from_value(record["grant"].clone()).ok()?;
    let (method, key) = grant.proof.as_ref().map_or(("uid", None), |proof| {
        (proof.method.name(), proof.key.as_deref())
    });
    let key = key.map_or_else(String::new, |key| format!(" key={key}"));
    Some(format!(
        "seq={} {event} {} agent={} {} approver={} uid={} method={method}{key}",
        record["seq"],
        kya_agent::grants::grant_label(grant.id),
        grant.agent,
        grant.resource.text(),
        grant.approver,
        grant.approver_uid,
    ))
}

fn verify(args: &VerifyArgs) -> ExitCode {
    let trail = args.state_dir.join(AUDIT_LOG_FILE);
    if let Err(error) = std::fs::metadata(&trail) {
        eprintln!("{}", missing_trail(&trail, &error));
        return ExitCode::from(CANNOT_CHECK);
    }
    let (anchor, anchor_usable) = anchor(&args.state_dir.join(STATE_FILE));
    let report = audit::verify(&trail, anchor.as_ref());
    print_report(&report, anchor_usable);
    if report.read_failed() {
        ExitCode::from(CANNOT_CHECK)
    } else if report.is_intact() && anchor_usable {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn missing_trail(trail: &Path, error: &io::Error) -> String {
    if error.kind() == io::ErrorKind::NotFound {
        format!(
            "kya audit verify: there is no audit trail at {}: kya-agent has not written one yet, or --state-dir is wrong",
            trail.display()
        )
    } else {
        format!("kya audit verify: cannot read {}: {error}", trail.display())
    }
}

/// The anchor from the state file, saying which one (or why none) is used. The second value is
/// false when the state file exists but cannot be read: then a cut-short trail would go unseen,
/// so the check cannot pass.
fn anchor(state: &Path) -> (Option<AuditHead>, bool) {
    match audit::read_anchor(state) {
        Ok(Anchor::Head(head)) => {
            println!(
                "anchor: {} says the trail reached seq {}",
                state.display(),
                head.seq
            );
            (Some(head), true)
        }
        Ok(Anchor::NoHead) => {
            println!(
                "no anchor: {} has no audit_head; records removed from the end would go unseen",
                state.display()
            );
            (None, true)
        }
        Ok(Anchor::NoStateFile) => {
            println!(
                "no anchor: {} does not exist; records removed from the end would go unseen",
                state.display()
            );
            (None, true)
        }
        Err(error) => {
            println!("{}; checking the chain alone", error_chain(&error));
            (None, false)
        }
    }
}

fn print_report(report: &VerifyReport, anchor_usable: bool) {
    for problem in &report.problems {
        // A problem quotes what it found in the file, which may be anything.
        println!("{}", escape_lines(&problem.to_string()));
    }
    if let Some(bytes) = report.torn_tail {
        println!(
            "note: the last {bytes} bytes are an unfinished write (a crash, or a write in progress); kya-agent drops them at its next start"
        );
    }
    let path = report.path.display();
    let records = report.lines;
    match report.problems.len() {
        0 if anchor_usable => println!("audit trail {path}: {records} records, chain intact"),
        0 => println!(
            "audit trail {path}: {records} records, chain intact, but its end is unchecked: fix or remove the state file"
        ),
        1 => println!(
            "audit trail {path}: {records} records, {} good, 1 problem",
            report.good
        ),
        problems => println!(
            "audit trail {path}: {records} records, {} good, {problems} problems",
            report.good
        ),
    }
}
