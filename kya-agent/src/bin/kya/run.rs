//! `kya run --agent NAME -- CMD [ARGS...]`: have the daemon tag this process, then become CMD.
use std::{ffi::CString, os::unix::ffi::OsStrExt as _, path::Path, process::ExitCode};

use kya_agent::control::{
    client,
    protocol::{Request, Response},
};

#[derive(clap::Args)]
#[command(after_long_help = "Examples:
  kya run --agent coder -- claude
  kya run --agent ops -- python3 agent.py --task cleanup")]
pub struct Args {
    /// The agent (a name from the config) the command runs as.
    #[arg(long, value_name = "NAME")]
    agent: String,
    /// The command and its arguments.
    #[arg(required = true, last = true, value_name = "CMD", value_hint = clap::ValueHint::CommandWithArguments)]
    command: Vec<std::ffi::OsString>,
}

pub fn run(socket: &Path, args: &Args) -> ExitCode {
    match client::call(
        socket,
        &Request::Run {
            agent: args.agent.clone(),
        },
    ) {
        Ok(Response::Tagged { .. }) => {}
        Ok(Response::Error { message }) => {
            eprintln!("kya run: {message}");
            return ExitCode::FAILURE;
        }
        Ok(other) => {
            eprintln!("kya run: unexpected answer from kya-agent: {other:?}");
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("kya run: {error}");
            return ExitCode::FAILURE;
        }
    }
    let argv: Result<Vec<CString>, _> = args
        .command
        .iter()
        .map(|arg| CString::new(arg.as_bytes()))
        .collect();
    let Ok(argv) = argv else {
        eprintln!("kya run: the command contains a NUL byte");
        return ExitCode::FAILURE;
    };
    // Replacing this (now tagged) process keeps the tag: the command is the agent.
    let error = nix::unistd::execvp(&argv[0], &argv).unwrap_err();
    eprintln!(
        "kya run: cannot execute {}: {error}",
        args.command[0].to_string_lossy()
    );
    ExitCode::from(127)
}
