//! `kya ps [--json]`.
use std::{path::Path, process::ExitCode};

use kya_agent::{
    control::{
        client,
        protocol::{Request, Response, TaggedProcess},
    },
    text::or_dash,
};

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(socket: &Path, args: &Args) -> ExitCode {
    let processes = match client::call(socket, &Request::Ps {}) {
        Ok(Response::Processes { processes }) => processes,
        Ok(Response::Error { message }) => {
            eprintln!("kya ps: {message}");
            return ExitCode::FAILURE;
        }
        Ok(other) => {
            eprintln!("kya ps: unexpected answer from kya-agent: {other:?}");
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("kya ps: {error}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&processes).expect("processes serialize")
        );
        return ExitCode::SUCCESS;
    }
    println!(
        "{:>8}  {:<16} {:<8} {:<10} {:>7}  EXE",
        "PID", "AGENT", "MATCHED", "ORIGIN", "THREADS"
    );
    for process in processes {
        println!("{}", line(&process));
    }
    ExitCode::SUCCESS
}

/// One process as a table row; its executable is shown escaped.
fn line(process: &TaggedProcess) -> String {
    format!(
        "{:>8}  {:<16} {:<8} {:<10} {:>7}  {}",
        process.pid,
        process.agent,
        process.matched_by,
        process.origin,
        process.threads,
        or_dash(process.exe.as_ref())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ask::tests::{SHOWN, assert_inert, hostile};

    #[test]
    fn a_process_shows_a_hostile_executable_escaped() {
        let process = TaggedProcess {
            pid: 4_000,
            agent: "coder".to_owned(),
            exe: Some(hostile("")),
            matched_by: "exe".to_owned(),
            origin: "matched".to_owned(),
            threads: 1,
        };
        let shown = line(&process);
        assert_inert(&shown);
        assert!(shown.ends_with(&format!("  {SHOWN}")), "{shown}");
    }
}
