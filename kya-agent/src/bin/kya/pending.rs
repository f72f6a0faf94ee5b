//! `kya pending [--json]`: what agents were refused that a human could grant.
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
        println!(
            "{}  agent={} {}  ({} x{}, last by pid {} {} at {})",
            request.id,
            request.agent,
            request.resource,
            request.operation,
            request.count,
            request.pid,
            request.exe.as_deref().unwrap_or("-"),
            time(request.last_ms)
        );
    }
    ExitCode::SUCCESS
}
