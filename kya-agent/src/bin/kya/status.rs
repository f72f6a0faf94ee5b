//! `kya status [--json]`: whether kya-agent is running and enforcing, and what it holds.
use std::{path::Path, process::ExitCode};

use kya_agent::control::{
    client,
    protocol::{Request, Response, StatusView},
};

use crate::ask::unexpected;

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Exit status when the daemon is not running (so scripts can tell it from other failures).
const NOT_RUNNING: u8 = 3;

pub fn run(socket: &Path, args: &Args) -> ExitCode {
    let status = match client::call(socket, &Request::Status {}) {
        Ok(Response::Status { status }) => status,
        Ok(Response::Error { message }) => {
            eprintln!("kya status: {message}");
            return ExitCode::FAILURE;
        }
        Ok(other) => return unexpected("status", &other),
        Err(error) => {
            if args.json {
                println!(r#"{{"running":false}}"#);
            } else {
                println!("kya-agent: not running ({error})");
            }
            return ExitCode::from(NOT_RUNNING);
        }
    };
    if args.json {
        let mut value = serde_json::to_value(&status).expect("status serializes");
        value["running"] = serde_json::Value::Bool(true);
        println!("{}", serde_json::to_string_pretty(&value).expect("JSON"));
        return ExitCode::SUCCESS;
    }
    let enforcing = status.hooks.iter().filter(|hook| hook.enforcing).count();
    let idle: Vec<&str> = status
        .hooks
        .iter()
        .filter(|hook| !hook.enforcing)
        .map(|hook| hook.hook.as_str())
        .collect();
    println!("kya-agent {} running (pid {})", status.version, status.pid);
    println!("config: {}", status.config);
    println!(
        "hooks: {enforcing} of {} enforcing{}",
        status.hooks.len(),
        if idle.is_empty() {
            String::new()
        } else {
            format!(" (not: {})", idle.join(", "))
        }
    );
    println!(
        "grants: {}; pending requests: {}; {}",
        status.grants,
        status.pending,
        events_lost(&status)
    );
    for agent in &status.agents {
        println!(
            "agent {}: {} tagged process(es), {} grant(s), {} pending",
            agent.name, agent.tagged_processes, agent.grants, agent.pending
        );
        if let Some(contained) = &agent.contained {
            println!("  CONTAINED: {contained}");
        }
    }
    ExitCode::SUCCESS
}

/// What the kernel lost, by where: `events lost: 7 (ring buffer full: 2, over an agent's
/// budget: 5)`.
fn events_lost(status: &StatusView) -> String {
    let total = status.events_lost.saturating_add(status.events_over_budget);
    format!(
        "events lost: {total} (ring buffer full: {}, over an agent's budget: {})",
        status.events_lost, status.events_over_budget
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_lost_names_both_kernel_stages() {
        let status = StatusView {
            version: "0.1.0".to_owned(),
            pid: 1,
            config: "(embedded default)".to_owned(),
            hooks: Vec::new(),
            agents: Vec::new(),
            grants: 0,
            pending: 0,
            events_lost: 2,
            events_over_budget: 5,
        };
        assert_eq!(
            events_lost(&status),
            "events lost: 7 (ring buffer full: 2, over an agent's budget: 5)"
        );
    }
}
