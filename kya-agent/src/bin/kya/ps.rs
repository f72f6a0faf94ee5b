//! `kya ps [--json]`.
use std::{path::Path, process::ExitCode};

use kya_agent::control::{
    client,
    protocol::{Request, Response},
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
        println!(
            "{:>8}  {:<16} {:<8} {:<10} {:>7}  {}",
            process.pid,
            process.agent,
            process.matched_by,
            process.origin,
            process.threads,
            process.exe.as_deref().unwrap_or("-")
        );
    }
    ExitCode::SUCCESS
}
