//! `kya-agent`: the daemon. Without a subcommand it enforces in the foreground.
mod check_config;
mod logging;
mod probe;
mod unload;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use kya_agent::{
    cli_docs,
    daemon::{self, DaemonOptions},
    metrics,
    paths::{BPF_PIN_DIR, CONTROL_SOCKET, STATE_DIR},
};

#[derive(Parser)]
#[command(
    name = "kya-agent",
    version,
    about = "Know Your Agent: the enforcement daemon",
    long_about = "Know Your Agent: the enforcement daemon.\n\n\
        Without a subcommand, kya-agent loads kya's BPF LSM programs, tags the agents its config \
        names and everything they start, and refuses their credential reads and outbound \
        connections unless the config or a grant a human approved allows them. It runs in the \
        foreground (as the systemd service kya-agent.service), serves the kya command on its \
        control socket and Prometheus metrics over HTTP. SIGHUP reloads the config; SIGTERM \
        and SIGINT stop the daemon and leave enforcement pinned and in force until \
        `kya-agent unload`.",
    after_long_help = "Examples:
  kya-agent --config /etc/kya/kya.toml          # what the systemd unit runs
  kya-agent check-config /etc/kya/kya.toml      # check a config before `kya reload`
  kya-agent probe                               # can this host enforce?"
)]
struct Cli {
    /// Config file; without it the embedded default config is used.
    #[arg(long, value_name = "PATH", value_hint = clap::ValueHint::FilePath)]
    config: Option<PathBuf>,
    /// Control socket the `kya` CLI talks to.
    #[arg(long, value_name = "PATH", default_value = CONTROL_SOCKET, global = true, value_hint = clap::ValueHint::FilePath)]
    socket: PathBuf,
    /// Directory for grants, pending requests and the audit trail.
    #[arg(long, value_name = "DIR", default_value = STATE_DIR, value_hint = clap::ValueHint::DirPath)]
    state_dir: PathBuf,
    /// The bpffs directory kya pins its programs and maps under.
    #[arg(long, value_name = "DIR", default_value = BPF_PIN_DIR, global = true, value_hint = clap::ValueHint::DirPath)]
    pin_dir: PathBuf,
    /// Where to serve Prometheus metrics (`/metrics`): ADDR:PORT, [V6ADDR]:PORT, or `off`.
    #[arg(long, value_name = "ADDR:PORT", default_value = metrics::DEFAULT_METRICS_ADDR, value_parser = parse_metrics)]
    metrics: MetricsAddress,
    #[command(subcommand)]
    command: Option<Command>,
}

/// `--metrics`: an address, or none (`off`).
#[derive(Clone, Copy, Debug)]
struct MetricsAddress(Option<SocketAddr>);

fn parse_metrics(value: &str) -> Result<MetricsAddress, String> {
    metrics::parse_listen(value).map(MetricsAddress)
}

#[derive(Subcommand)]
enum Command {
    /// Validate a config file and show what its rules resolve to on this host.
    CheckConfig(check_config::Args),
    /// Check whether this host can run kya's kernel programs (loads them and detaches them).
    Probe,
    /// Remove everything kya attached and pinned: the only way enforcement stops.
    ///
    /// Run it as root after stopping kya-agent (`systemctl stop kya-agent`): stopping the
    /// daemon leaves every agent confined, with the grants it had.
    Unload,
}

fn main() -> ExitCode {
    logging::init();
    let matches = cli_docs::with_generator(Cli::command()).get_matches();
    if let Some(dir) = cli_docs::requested(&matches) {
        return cli_docs::run(Cli::command(), cli_docs::KYA_AGENT, &dir);
    }
    let cli = Cli::from_arg_matches(&matches)
        .unwrap_or_else(|error| error.format(&mut Cli::command()).exit());
    match cli.command {
        Some(Command::CheckConfig(args)) => {
            kya_agent::end_quietly_on_closed_output();
            check_config::run(&args)
        }
        Some(Command::Probe) => probe::run(),
        Some(Command::Unload) => unload::run(&cli.socket, &cli.pin_dir),
        None => match daemon::run(&DaemonOptions {
            config: cli.config,
            socket: cli.socket,
            state_dir: cli.state_dir,
            metrics: cli.metrics.0,
            pin_dir: cli.pin_dir,
        }) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("kya-agent: {}", daemon::describe(&error));
                ExitCode::FAILURE
            }
        },
    }
}
