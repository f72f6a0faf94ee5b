//! What each agent may reach over unix sockets, as `check-config` prints it: the allow-list in
//! the order the kernel applies it, with the reasons of the built-in lists.
use kya_agent::{
    config::Config,
    files::{Scope, Why, tables::ResolvedFileRule},
    network::SocketName,
};

/// Prints the unix socket rules: the built-in lists once, then each agent's own.
pub fn print(config: &Config, rules: &[ResolvedFileRule]) {
    println!(
        "unix sockets (an agent may connect or send only to these; everything else is refused):"
    );
    println!("  serving sockets, every agent (they serve callers without acting for them):");
    for rule in rules {
        if let Why::ServingSocket(why) = rule.why {
            println!("    {}{}: {why}", rule.path.display(), presence(rule));
        }
    }
    println!(
        "  credential sockets, refused to every agent even where it serves them itself, unless \
         its network.unix_allow names them or a grant covers them:"
    );
    for rule in rules {
        if let Why::CredentialSocket(why) = rule.why {
            println!("    {}{}: {why}", rule.path.display(), presence(rule));
        }
    }
    for name in SocketName::ALL {
        println!("    {} (any such socket): {}", name.describe(), name.why());
    }
    for agent in config.agents() {
        let own: Vec<&ResolvedFileRule> = rules
            .iter()
            .filter(|rule| rule.scope == Scope::Agent(agent.id()))
            .collect();
        println!("  agent {}, in the order the kernel applies:", agent.name());
        for rule in &own {
            if matches!(rule.why, Why::UnixAllow { .. }) {
                let path = rule.path.display();
                println!(
                    "    allowed by network.unix_allow: {path}{}",
                    presence(rule)
                );
            }
        }
        println!("    refused: the credential sockets above");
        for rule in &own {
            if matches!(rule.why, Why::UnixDeny { .. }) {
                let path = rule.path.display();
                println!("    refused by network.unix_deny: {path}{}", presence(rule));
            }
        }
        println!(
            "    allowed: its own servers (sockets a process of the agent binds or listens on)"
        );
        println!("    allowed: the serving sockets above");
        println!(
            "    allowed: what a grant covers (kya grant --agent {} --unix PATH|@NAME)",
            agent.name()
        );
        println!("    everything else: refused with EPERM and an event");
    }
}

/// ` (absent now)` for a socket file that does not exist yet: it is covered once it appears.
fn presence(rule: &ResolvedFileRule) -> &'static str {
    if rule.exists { "" } else { " (absent now)" }
}
