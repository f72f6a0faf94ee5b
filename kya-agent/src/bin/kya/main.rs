//! `kya`: the command-line tool that talks to the running daemon.
mod events;
mod ps;
mod run;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use kya_agent::paths::CONTROL_SOCKET;

#[derive(Parser)]
#[command(
    name = "kya",
    version,
    about = "Know Your Agent: see and steer what agents may do"
)]
struct Cli {
    /// The daemon's control socket.
    #[arg(long, value_name = "PATH", default_value = CONTROL_SOCKET, global = true)]
    socket: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List tagged (agent) processes.
    Ps(ps::Args),
    /// Run a command as an agent: it and everything it starts are tagged.
    Run(run::Args),
    /// Show what agents were refused.
    Events(events::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Ps(args) => ps::run(&cli.socket, &args),
        Command::Run(args) => run::run(&cli.socket, &args),
        Command::Events(args) => events::run(&cli.socket, &args),
    }
}
