//! `kya pending [--json]`: what agents were refused that a human could grant.
use std::{path::Path, process::ExitCode};

use kya_agent::{
    control::protocol::{PendingView, Request, Response},
    text::or_dash,
};

use crate::ask::{ask, time, unexpected};

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(socket: &Path, args: &Args) -> ExitCode {
    let requests = match ask(socket, "pending", &Request::Pending {}) {
        Ok(Response::Pending { requests }) => requests,
        Ok(other) => return unexpected("pending", &other),
        Err(code) => return code,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&requests).expect("requests serialize")
        );
        return ExitCode::SUCCESS;
    }
    if requests.is_empty() {
        println!("no pending requests");
        return ExitCode::SUCCESS;
    }
    for request in requests {
        println!("{}", line(&request));
    }
    ExitCode::SUCCESS
}

/// One request as a line of text; its resource and executable are shown escaped.
fn line(request: &PendingView) -> String {
    format!(
        "{}  agent={} {}  ({} x{}, last by pid {} {} at {})",
        request.id,
        request.agent,
        request.resource,
        request.operation,
        request.count,
        request.pid,
        or_dash(request.exe.as_ref()),
        time(request.last_ms)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ask::tests::{SHOWN, assert_inert, hostile};

    #[test]
    fn a_request_shows_hostile_names_escaped() {
        let mut resource = kya_agent::text::AgentText::from("file ");
        resource.push(hostile(" [8:1 inode 42]"));
        let request = PendingView {
            id: "r3".to_owned(),
            agent: "coder".to_owned(),
            kind: "file".to_owned(),
            resource,
            operation: "file-open".to_owned(),
            pid: 4_000,
            exe: Some(hostile("exe")),
            first_ms: 0,
            last_ms: 0,
            count: 2,
            why: None,
        };
        let shown = line(&request);
        assert_inert(&shown);
        assert!(
            shown.starts_with(&format!("r3  agent=coder file {SHOWN} [8:1 inode 42]  (")),
            "{shown}"
        );
        assert!(
            shown.contains(&format!(" pid 4000 {SHOWN}exe at ")),
            "{shown}"
        );
        // Pretty JSON breaks lines of its own; no line holds a raw control character.
        let json = serde_json::to_string_pretty(&[request]).unwrap();
        json.lines().for_each(assert_inert);
    }
}
