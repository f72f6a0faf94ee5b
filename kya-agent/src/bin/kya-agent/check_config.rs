//! `kya-agent check-config PATH`: validate a config and show what it resolves to here.
mod unix;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use kya_agent::{
    accounts::{self, Account},
    config::{Agent, Config},
    files::{self, tables::OwnFiles},
    network, paths,
    policy::{Policy, Report},
    text::AgentText,
};

#[derive(clap::Args)]
pub struct Args {
    /// The config file to check.
    #[arg(value_hint = clap::ValueHint::FilePath)]
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
    for warning in network::metadata::warnings(&config) {
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
        print_gone_accounts(agent);
    }
    let policy = Policy::compile(&config, &own_files(&args.path));
    let report = policy.report();
    println!("processes:");
    for rule in report.processes {
        match &rule.outcome {
            Ok(target) => println!("  {} {} {} -> {target}", rule.agent, rule.kind, rule.value),
            Err(problem) => println!(
                "  {} {} {} -> matches nothing: {problem}",
                rule.agent, rule.kind, rule.value
            ),
        }
    }
    print_catalogue();
    print_files(&config, &policy, &report);
    print_network(&report);
    unix::print(&config, report.files);
    ExitCode::SUCCESS
}

/// Warns of an owner or approver of `agent` whose account is gone now: the daemon would contain
/// the agent at once, or refuse that approver.
fn print_gone_accounts(agent: &Agent) {
    if let Account::Gone(gone) = accounts::state_of(agent.owner()) {
        println!(
            "warning: agent {}: its owner {} {gone}; the daemon contains an agent whose owner \
             is gone (grants revoked, allowlists suspended): name a living owner",
            agent.name(),
            agent.owner()
        );
    }
    for approver in agent.approvers() {
        if let Account::Gone(gone) = accounts::state_of(approver) {
            println!(
                "warning: agent {}: its approver {approver} {gone}; the daemon refuses their \
                 approvals and revokes their grants",
                agent.name()
            );
        }
    }
}

/// kya's own files as a daemon started with this config would protect them: the default
/// state and pin directories, this config file and this executable.
fn own_files(config: &Path) -> OwnFiles {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/usr/bin/kya-agent"));
    OwnFiles::new(
        PathBuf::from(paths::STATE_DIR),
        Some(std::path::absolute(config).unwrap_or_else(|_| config.to_owned())),
        PathBuf::from(paths::BPF_PIN_DIR),
        &exe,
    )
}

/// What every agent's network allowlist resolves to on this host now.
fn print_network(report: &Report<'_>) {
    println!("network allowlists (everything else is refused to agents):");
    for rule in report.network {
        match &rule.outcome {
            Ok(networks) => println!("  {} {} -> {}", rule.agent, rule.rule, networks.join(", ")),
            Err(problem) => println!(
                "  {} {} -> allows nothing now: {problem}",
                rule.agent, rule.rule
            ),
        }
    }
    println!(
        "cloud metadata endpoints (they hand out the host's cloud credentials; no allowlist \
         range opens them, only an entry naming the address itself or a grant; refusals are \
         kind connect/send):"
    );
    for endpoint in network::metadata::METADATA_ENDPOINTS {
        println!(
            "  {} {} ({})",
            endpoint.addr, endpoint.service, endpoint.source
        );
    }
}

/// Every entry of the credential catalogue, by category, with what it holds and where that
/// is documented.
fn print_catalogue() {
    println!(
        "credential catalogue ({} entries, refused to every agent unless its files.allow names \
         the path; ~/ is every home):",
        files::CATALOGUE.len()
    );
    let mut category = None;
    for entry in files::CATALOGUE {
        if category != Some(entry.category) {
            category = Some(entry.category);
            println!("  {}:", entry.category.name());
        }
        println!("    {}: {} [{}]", entry.describe(), entry.why, entry.source);
    }
}

/// What the credential catalogue, the `[agents.files]` rules and kya's own files resolve to
/// on this host.
fn print_files(config: &Config, policy: &Policy, report: &Report<'_>) {
    let tables = &policy.file_tables;
    println!(
        "protected files (the catalogue and kya's own files for every agent, plus each agent's own) that exist now:"
    );
    // Socket rules are listed with the unix sockets, footholds apart.
    let files = || {
        report
            .files
            .iter()
            .filter(|rule| !rule.why.is_socket() && !rule.why.is_foothold())
    };
    let absent = files().filter(|rule| !rule.exists).count();
    print_existing(config, files(), "  ");
    println!(
        "  ({absent} more configured paths do not exist now; each is protected as soon as it \
         appears)"
    );
    for entry in files::CATALOGUE {
        if let files::Covers::Name(pattern) = entry.covers {
            println!("  {} [all agents] anywhere", pattern.describe());
        }
    }
    println!(
        "  {} objects by identity, {} paths by name",
        tables.inodes.len(),
        tables.names.len()
    );
    print_footholds(config, report);
    let unresolved: Vec<_> = report
        .files
        .iter()
        .filter_map(|rule| Some((rule, rule.unresolved.as_ref()?)))
        .collect();
    if !unresolved.is_empty() {
        println!(
            "protected paths whose identity, as the kernel sees it, cannot be established (not \
             protected by it until it can be and the config is reloaded):"
        );
        for (rule, problem) in unresolved {
            println!("  {}: {problem}", AgentText::from(rule.path.as_path()));
        }
    }
}

/// Each of `rules` that exists now: its path, whom it applies to and why, indented by `indent`.
fn print_existing<'a>(
    config: &Config,
    rules: impl Iterator<Item = &'a files::tables::ResolvedFileRule>,
    indent: &str,
) {
    for rule in rules.filter(|rule| rule.exists) {
        let scope = match rule.scope {
            files::Scope::AllAgents => "all agents".to_owned(),
            files::Scope::Agent(id) => config
                .agent_by_id(id)
                .map_or_else(|| id.to_string(), |agent| agent.name().to_owned()),
        };
        println!(
            "{indent}{}{} [{}] {}",
            AgentText::from(rule.path.as_path()),
            if rule.tree { "/ (tree)" } else { "" },
            scope,
            rule.why,
        );
    }
}

/// The foothold catalogue, by category, and what it and each agent's `protect_writes` and
/// `allow_writes` resolve to on this host.
fn print_footholds(config: &Config, report: &Report<'_>) {
    println!(
        "execution footholds (agents may read them, not change, create, rename, link or delete \
         them; refusals are kind foothold):"
    );
    for foothold in kya_agent::config::footholds::FOOTHOLDS {
        println!(
            "  {} [{}] {} ({})",
            foothold.pattern,
            foothold.category.name(),
            foothold.why,
            foothold.source
        );
    }
    let footholds = || report.files.iter().filter(|rule| rule.why.is_foothold());
    let absent = footholds().filter(|rule| !rule.exists).count();
    println!("  that exist now:");
    print_existing(config, footholds(), "    ");
    println!(
        "    ({absent} more foothold paths do not exist now; each is protected as soon as it \
         appears)"
    );
}
