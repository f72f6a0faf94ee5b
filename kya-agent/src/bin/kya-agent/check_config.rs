//! `kya-agent check-config PATH`: validate a config and show what it resolves to here.
use std::{path::PathBuf, process::ExitCode};

use kya_agent::{config::Config, tagging::rules};

#[derive(clap::Args)]
pub struct Args {
    /// The config file to check.
    path: PathBuf,
}

pub fn run(args: &Args) -> ExitCode {
    let config = match Config::load(&args.path) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "kya-agent: {} has {} error(s); nothing was applied",
                args.path.display(),
                errors.errors().len()
            );
            return ExitCode::FAILURE;
        }
    };
    for warning in config.warnings() {
        println!("warning: {warning}");
    }
    println!(
        "{}: valid, {} agent(s)",
        args.path.display(),
        config.agents().len()
    );
    for agent in config.agents() {
        println!(
            "agent {} (id {}, owner {})",
            agent.name(),
            agent.id(),
            agent.owner()
        );
    }
    for rule in rules::compile(&config).resolved {
        match rule.outcome {
            Ok(target) => println!("  {} {} {} -> {target}", rule.agent, rule.kind, rule.value),
            Err(problem) => println!(
                "  {} {} {} -> matches nothing: {problem}",
                rule.agent, rule.kind, rule.value
            ),
        }
    }
    ExitCode::SUCCESS
}
