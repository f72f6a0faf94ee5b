//! `kya grants [--json]`: grants in force.
use std::{path::Path, process::ExitCode};

use kya_agent::control::protocol::{GrantView, Request, Response};

use crate::ask::{ask, time, unexpected};

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(socket: &Path, args: &Args) -> ExitCode {
    let grants = match ask(socket, "grants", &Request::Grants {}) {
        Ok(Response::Grants { grants }) => grants,
        Ok(other) => return unexpected("grants", &other),
        Err(code) => return code,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&grants).expect("grants serialize")
        );
        return ExitCode::SUCCESS;
    }
    if grants.is_empty() {
        println!("no grants in force");
        return ExitCode::SUCCESS;
    }
    for grant in grants {
        println!("{}", line(&grant));
    }
    ExitCode::SUCCESS
}

/// One grant as a line of text; its resource and reason are shown escaped.
fn line(grant: &GrantView) -> String {
    let lasts = match grant.uses_left {
        Some(left) => format!("{left} use left, until {}", time(grant.expires_ms)),
        None => format!("until {}, used {}x", time(grant.expires_ms), grant.uses),
    };
    let proven = match (grant.approval.as_deref(), grant.key.as_deref()) {
        (Some("ssh-key"), Some(key)) => format!(" [ssh-key {key}]"),
        (Some(method), _) if method != "uid" => format!(" [{method}]"),
        _ => String::new(),
    };
    format!(
        "{}  agent={} {}  approved by {} (uid {}){proven} at {}{}; {lasts}{}",
        grant.id,
        grant.agent,
        grant.resource,
        grant.approver,
        grant.approver_uid,
        time(grant.created_ms),
        grant
            .request
            .as_deref()
            .map_or_else(String::new, |request| format!(" for {request}")),
        grant
            .reason
            .as_ref()
            .map_or_else(String::new, |reason| format!("; reason: {reason}")),
    )
}

#[cfg(test)]
pub mod tests {
    use kya_agent::text::AgentText;

    use super::*;
    use crate::ask::tests::{SHOWN, assert_inert, hostile};

    /// A grant for a hostile name, with a hostile reason.
    pub fn grant() -> GrantView {
        let mut resource = AgentText::from("connect ");
        resource.push(hostile(":443 (127.0.0.2:443)"));
        GrantView {
            id: "g2".to_owned(),
            agent: "coder".to_owned(),
            kind: "connect".to_owned(),
            resource,
            approver: "alice".to_owned(),
            approver_uid: 1000,
            reason: Some(hostile("reason")),
            request: Some("r3".to_owned()),
            created_ms: 0,
            expires_ms: 0,
            uses_left: Some(1),
            uses: 0,
            approval: Some("uid".to_owned()),
            key: None,
        }
    }

    #[test]
    fn a_grant_shows_hostile_names_escaped() {
        let shown = line(&grant());
        assert_inert(&shown);
        assert!(
            shown.starts_with(&format!(
                "g2  agent=coder connect {SHOWN}:443 (127.0.0.2:443)  "
            )),
            "{shown}"
        );
        assert!(
            shown.ends_with(&format!("; reason: {SHOWN}reason")),
            "{shown}"
        );
        let json = serde_json::to_string_pretty(&[grant()]).unwrap();
        json.lines().for_each(assert_inert);
    }
}
