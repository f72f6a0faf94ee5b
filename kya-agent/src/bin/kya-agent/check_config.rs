//! `kya-agent check-config PATH`: validate a config and show what it resolves to here.
use std::{path::PathBuf, process::ExitCode};

use kya_agent::{config::Config, files, tagging::rules};

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
    println!("processes:");
    for rule in rules::compile(&config).resolved {
        match rule.outcome {
            Ok(target) => println!("  {} {} {} -> {target}", rule.agent, rule.kind, rule.value),
            Err(problem) => println!(
                "  {} {} {} -> matches nothing: {problem}",
                rule.agent, rule.kind, rule.value
            ),
        }
    }
    print_files(&config);
    print_network(&config);
    ExitCode::SUCCESS
}

/// What every agent's network allowlist resolves to on this host now.
fn print_network(config: &Config) {
    println!("network allowlists (everything else is refused to agents):");
    let table = kya_agent::network::table::compile(
        config,
        &kya_agent::network::system_nameservers(),
        &kya_agent::network::resolve_host,
    );
    for rule in &table.rules {
        match &rule.outcome {
            Ok(networks) => println!("  {} {} -> {}", rule.agent, rule.rule, networks.join(", ")),
            Err(problem) => println!(
                "  {} {} -> allows nothing now: {problem}",
                rule.agent, rule.rule
            ),
        }
    }
}

/// What the credential catalogue and the `[agents.files]` rules resolve to on this host.
fn print_files(config: &Config) {
    let plan = files::resolve(config, &files::system_homes());
    let mut tables = files::tables::resolve(&plan);
    tables.add_sockets(config);
    println!("protected files (catalogue for every agent, plus each agent's own) that exist now:");
    let absent = tables.rules.iter().filter(|rule| !rule.exists).count();
    for rule in tables.rules.iter().filter(|rule| rule.exists) {
        let scope = match rule.scope {
            files::Scope::AllAgents => "all agents".to_owned(),
            files::Scope::Agent(id) => config
                .agent_by_id(id)
                .map_or_else(|| id.to_string(), |agent| agent.name().to_owned()),
        };
        println!(
            "  {}{} [{}] {}",
            rule.path.display(),
            if rule.tree { "/ (tree)" } else { "" },
            scope,
            rule.why,
        );
    }
    println!(
        "  ({absent} more configured paths do not exist now; each is protected as soon as it \
         appears)"
    );
    for pattern in &plan.names {
        println!("  {} [all agents] anywhere", pattern.describe());
    }
    println!(
        "  {} objects by identity, {} paths by name",
        tables.inodes.len(),
        tables.names.len()
    );
}
