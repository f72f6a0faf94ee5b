//! `kya grants [--json]`: grants in force.
use std::{path::Path, process::ExitCode};

use kya_agent::control::protocol::{Request, Response};

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
        let lasts = match grant.uses_left {
            Some(left) => format!("{left} use left, until {}", time(grant.expires_ms)),
            None => format!("until {}, used {}x", time(grant.expires_ms), grant.uses),
        };
        println!(
            "{}  agent={} {}  approved by {} (uid {}) at {}{}; {lasts}{}",
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
                .as_deref()
                .map_or_else(String::new, |reason| format!("; reason: {reason}")),
        );
    }
    ExitCode::SUCCESS
}
