//! `kya`: the command-line tool that talks to the running daemon.
mod ask;
mod audit;
mod decide;
mod events;
mod grants;
mod pending;
mod prove;
mod ps;
mod reload;
mod run;
mod status;
mod totp;
mod watch;

use std::{path::PathBuf, process::ExitCode};

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use kya_agent::{cli_docs, paths::CONTROL_SOCKET};

/// Shown after `kya --help` and in kya(1).
const EXAMPLES: &str = "Examples:
  kya status                                   # is kya-agent enforcing?
  kya ps                                       # the tagged (agent) processes
  kya run --agent coder -- claude              # start an agent: it and all it starts are tagged
  kya pending                                  # what agents were refused and a human may allow
  kya approve r3 --once --reason \"rotate keys\" # one use, recorded with your name
  kya events --follow                          # refusals and grant activity as they happen";

#[derive(Parser)]
#[command(
    name = "kya",
    version,
    about = "Know Your Agent: see and steer what agents may do",
    long_about = "Know Your Agent: see and steer what agents may do.\n\n\
        kya talks to the kya-agent daemon through its control socket: it shows which processes \
        are agents and what they were refused, lets a human approve or refuse what an agent \
        asks for, grant ahead of time and end grants. The daemon knows the caller from the \
        socket's peer credentials: root and an agent's approvers may decide for it, never the \
        agent's own user and never a tagged process. Every decision goes to the audit trail.",
    after_long_help = EXAMPLES
)]
struct Cli {
    /// The daemon's control socket.
    #[arg(long, value_name = "PATH", default_value = CONTROL_SOCKET, global = true, value_hint = clap::ValueHint::FilePath)]
    socket: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Whether kya-agent is running and enforcing: version, config, hooks, agents, grants.
    Status(status::Args),
    /// List tagged (agent) processes.
    Ps(ps::Args),
    /// Run a command as an agent: it and everything it starts are tagged.
    Run(run::Args),
    /// Show what agents were refused, and grant activity.
    Events(events::Args),
    /// List requests waiting for a human: what agents were refused that a grant could allow.
    Pending(pending::Args),
    /// Follow pending requests as agents are refused, and answer each one: once, for a while,
    /// deny or skip (JSON lines with --json or without a terminal).
    Watch(watch::Args),
    /// Approve a pending request: the agent may do it once, or for a while.
    Approve(decide::ApproveArgs),
    /// Refuse a pending request.
    Deny(decide::DenyArgs),
    /// Grant ahead of time: an agent may open a file or reach a peer.
    Grant(decide::GrantArgs),
    /// List grants in force.
    Grants(grants::Args),
    /// End grants now: one, every grant a user approved, or every grant of an agent.
    Revoke(decide::RevokeArgs),
    /// Read the config file again and put it in force (root only).
    ///
    /// The config is put in force as a whole; a config with errors changes nothing and its
    /// errors are printed. The same as SIGHUP to kya-agent or `systemctl reload kya-agent`.
    Reload,
    /// Check the audit trail, or show the decisions in it.
    Audit(audit::Args),
    /// Enroll or remove an approver's authenticator (TOTP), for agents with approval = "totp"
    /// (root only).
    Totp(totp::Args),
}

fn main() -> ExitCode {
    kya_agent::end_quietly_on_closed_output();
    let matches = cli_docs::with_generator(Cli::command()).get_matches();
    if let Some(dir) = cli_docs::requested(&matches) {
        return cli_docs::run(Cli::command(), cli_docs::KYA, &dir);
    }
    let cli = Cli::from_arg_matches(&matches)
        .unwrap_or_else(|error| error.format(&mut Cli::command()).exit());
    match cli.command {
        Command::Status(args) => status::run(&cli.socket, &args),
        Command::Ps(args) => ps::run(&cli.socket, &args),
        Command::Run(args) => run::run(&cli.socket, &args),
        Command::Events(args) => events::run(&cli.socket, &args),
        Command::Pending(args) => pending::run(&cli.socket, &args),
        Command::Watch(args) => watch::run(&cli.socket, &args),
        Command::Approve(args) => decide::approve(&cli.socket, args),
        Command::Deny(args) => decide::deny(&cli.socket, args),
        Command::Grant(args) => decide::grant(&cli.socket, args),
        Command::Grants(args) => grants::run(&cli.socket, &args),
        Command::Revoke(args) => decide::revoke(&cli.socket, args),
        Command::Audit(args) => audit::run(&args),
        Command::Totp(args) => totp::run(&cli.socket, &args),
        Command::Reload => reload::run(&cli.socket),
    }
}
