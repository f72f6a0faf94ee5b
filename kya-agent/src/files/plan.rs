//! Compiles the catalogue and every agent's `[agents.files]` into concrete paths on this host:
//! what the daemon resolves to inodes and hands to the kernel, and what `check-config` shows.
//! Pure: nothing here touches the filesystem, so a path that does not exist is still listed.

use std::{collections::HashSet, fmt, path::PathBuf};

use super::catalogue::{CATALOGUE, Covers, NamePattern};
use crate::config::{AgentId, Config, PathPattern, footholds::FOOTHOLDS};

/// Which agents a protected path is protected from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every agent: the catalogue.
    AllAgents,
    /// One agent: its `files.protect` and `files.allow`.
    Agent(AgentId),
}

/// Why a path is in the plan; its `Display` is the label shown in events and `check-config`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Why {
    /// kya's own files and other built-in entries outside the credential catalogue, with a label.
    Catalogue(&'static str),
    /// An entry of the credential catalogue: its category and what it holds.
    Credential {
        category: &'static str,
        why: &'static str,
    },
    /// The agent's `files.protect`.
    Protect { agent: String },
    /// The agent's `files.allow`.
    Allow { agent: String },
    /// A built-in credential socket, with what talking to it gives.
    CredentialSocket(&'static str),
    /// A built-in socket that serves its callers without acting for them, with why it is safe.
    ServingSocket(&'static str),
    /// The agent's `network.unix_deny`.
    UnixDeny { agent: String },
    /// The agent's `network.unix_allow`.
    UnixAllow { agent: String },
    /// An entry of the foothold catalogue: its category and why it is one.
    Foothold {
        category: &'static str,
        why: &'static str,
    },
    /// The agent's `files.protect_writes`.
    ProtectWrites { agent: String },
    /// The agent's `files.allow_writes`.
    AllowWrites { agent: String },
}

impl Why {
    /// Whether the rule is about unix sockets (`check-config` lists those apart from files).
    #[must_use]
    pub fn is_socket(&self) -> bool {
        matches!(
            self,
            Self::CredentialSocket(_)
                | Self::ServingSocket(_)
                | Self::UnixDeny { .. }
                | Self::UnixAllow { .. }
        )
    }

    /// Whether the rule is about execution footholds (protected from changes only).
    #[must_use]
    pub fn is_foothold(&self) -> bool {
        matches!(
            self,
            Self::Foothold { .. } | Self::ProtectWrites { .. } | Self::AllowWrites { .. }
        )
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Catalogue(label) => write!(f, "catalogue: {label}"),
            Self::Credential { category, why } => write!(f, "catalogue ({category}): {why}"),
            Self::Protect { agent } => write!(f, "agent {agent} files.protect"),
            Self::Allow { agent } => write!(f, "agent {agent} files.allow"),
            Self::CredentialSocket(label) => write!(f, "credential socket: {label}"),
            Self::ServingSocket(label) => write!(f, "serving socket: {label}"),
            Self::UnixDeny { agent } => write!(f, "agent {agent} network.unix_deny"),
            Self::UnixAllow { agent } => write!(f, "agent {agent} network.unix_allow"),
            Self::Foothold { category, why } => write!(f, "foothold ({category}): {why}"),
            Self::ProtectWrites { agent } => write!(f, "agent {agent} files.protect_writes"),
            Self::AllowWrites { agent } => write!(f, "agent {agent} files.allow_writes"),
        }
    }
}

/// One concrete path of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedPath {
    /// Absolute, without a trailing `/`.
    pub path: PathBuf,
    /// Whether everything below `path` is covered too.
    pub tree: bool,
    pub scope: Scope,
    pub why: Why,
    /// The pattern `path` was expanded from.
    pub pattern: PathPattern,
}

/// One agent's own additions to and exemptions from the catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentFiles {
    pub id: AgentId,
    pub name: String,
    /// Protected from this agent only (scope: this agent), in config order.
    pub protect: Vec<PlannedPath>,
    /// Readable by this agent although the catalogue or `protect` covers them, in config order.
    pub allow: Vec<PlannedPath>,
    /// Protected from changes by this agent only, in config order.
    pub protect_writes: Vec<PlannedPath>,
    /// Changeable by this agent although the foothold catalogue covers them, in config order.
    pub allow_writes: Vec<PlannedPath>,
}

/// Everything that file protection covers on this host.
///
/// Within each list a path appears once (with a given `tree`), at its first occurrence; the same
/// path may still be in the catalogue and in an agent's list, since those differ in scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectionPlan {
    /// The catalogue's paths (scope: all agents), in catalogue order.
    pub all_agents: Vec<PlannedPath>,
    /// The foothold catalogue's paths (scope: all agents), protected from changes only.
    pub footholds: Vec<PlannedPath>,
    /// Every agent of the config, in config order, even those without `[agents.files]`.
    pub agents: Vec<AgentFiles>,
    /// The private key directories (`~/.ssh`, `~/.gnupg`) in every home (scope: all agents):
    /// every file in them but the public ones is protected, and everything deeper.
    pub private_dirs: Vec<PlannedPath>,
    /// The name rules the kernel applies (scope: all agents).
    pub names: Vec<NamePattern>,
}

impl ProtectionPlan {
    /// The own rules of the agent `id`, if the config defines it.
    #[must_use]
    pub fn agent(&self, id: AgentId) -> Option<&AgentFiles> {
        self.agents.iter().find(|agent| agent.id == id)
    }

    /// Every path protected from the agent `id`: the catalogue's, then its own.
    pub fn protected_from(&self, id: AgentId) -> impl Iterator<Item = &PlannedPath> {
        let own = self.agent(id).map(|agent| agent.protect.as_slice());
        self.all_agents.iter().chain(own.unwrap_or_default())
    }
}

/// Expands the catalogue and every agent's `[agents.files]` over `homes` (normally
/// [`system_homes`](super::system_homes)).
#[must_use]
pub fn resolve(config: &Config, homes: &[PathBuf]) -> ProtectionPlan {
    let mut all_agents = PathList::default();
    let mut private_dirs = PathList::default();
    let mut names = Vec::new();
    for entry in CATALOGUE {
        let why = Why::Credential {
            category: entry.category.name(),
            why: entry.why,
        };
        match entry.covers {
            Covers::Path(_) => {
                let pattern = entry.path_pattern().expect("a path entry has a pattern");
                all_agents.add(&pattern, homes, Scope::AllAgents, &why);
            }
            Covers::PrivateDir(_) => {
                let pattern = entry
                    .path_pattern()
                    .expect("a private directory has a pattern");
                private_dirs.add(&pattern, homes, Scope::AllAgents, &why);
            }
            Covers::Name(name) => names.push(name),
        }
    }

    let mut footholds = PathList::default();
    for foothold in FOOTHOLDS {
        let why = Why::Foothold {
            category: foothold.category.name(),
            why: foothold.why,
        };
        footholds.add(&foothold.path_pattern(), homes, Scope::AllAgents, &why);
    }

    let agents = config
        .agents()
        .iter()
        .map(|agent| {
            let scope = Scope::Agent(agent.id());
            let name = agent.name().to_owned();
            let mut protect = PathList::default();
            let why = Why::Protect {
                agent: name.clone(),
            };
            for pattern in agent.files().protect() {
                protect.add(pattern, homes, scope, &why);
            }
            let mut allow = PathList::default();
            let why = Why::Allow {
                agent: name.clone(),
            };
            for pattern in agent.files().allow() {
                allow.add(pattern, homes, scope, &why);
            }
            let mut protect_writes = PathList::default();
            let why = Why::ProtectWrites {
                agent: name.clone(),
            };
            for pattern in agent.files().protect_writes() {
                protect_writes.add(pattern, homes, scope, &why);
            }
            let mut allow_writes = PathList::default();
            let why = Why::AllowWrites {
                agent: name.clone(),
            };
            for pattern in agent.files().allow_writes() {
                allow_writes.add(pattern, homes, scope, &why);
            }
            AgentFiles {
                id: agent.id(),
                name,
                protect: protect.paths,
                allow: allow.paths,
                protect_writes: protect_writes.paths,
                allow_writes: allow_writes.paths,
            }
        })
        .collect();

    ProtectionPlan {
        all_agents: all_agents.paths,
        footholds: footholds.paths,
        agents,
        private_dirs: private_dirs.paths,
        names,
    }
}

/// A list of planned paths without repeats.
#[derive(Default)]
struct PathList {
    paths: Vec<PlannedPath>,
    seen: HashSet<(PathBuf, bool)>,
}

impl PathList {
    fn add(&mut self, pattern: &PathPattern, homes: &[PathBuf], scope: Scope, why: &Why) {
        let tree = pattern.is_tree();
        for path in pattern.expand(homes) {
            if self.seen.insert((path.clone(), tree)) {
                self.paths.push(PlannedPath {
                    path,
                    tree,
                    scope,
                    why: why.clone(),
                    pattern: pattern.clone(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const FILE: &str = "/etc/kya/test.toml";

    fn config(text: &str) -> Config {
        Config::from_toml_str(text, Path::new(FILE))
            .unwrap_or_else(|errors| panic!("expected a valid config, got:\n{errors}"))
    }

    fn homes() -> Vec<PathBuf> {
        ["/home/alice", "/home/bob", "/root"]
            .into_iter()
            .map(PathBuf::from)
            .collect()
    }

    fn paths_of(list: &[PlannedPath]) -> impl Iterator<Item = &Path> {
        list.iter().map(|planned| planned.path.as_path())
    }

    fn find<'a>(list: &'a [PlannedPath], path: &str) -> &'a PlannedPath {
        list.iter()
            .find(|planned| planned.path == Path::new(path))
            .unwrap_or_else(|| panic!("expected {path} in the plan: {list:#?}"))
    }

    /// How many path entries of the catalogue are `~/` patterns and how many absolute.
    fn catalogue_paths() -> (usize, usize) {
        let paths: Vec<PathPattern> = CATALOGUE
            .iter()
            .filter(|entry| matches!(entry.covers, Covers::Path(_)))
            .filter_map(|entry| entry.path_pattern())
            .collect();
        let home = paths
            .iter()
            .filter(|pattern| pattern.base() == crate::config::PatternBase::Home)
            .count();
        (home, paths.len() - home)
    }

    const CODER: &str = r#"
[[agents]]
name = "coder"
owner = "alice"
[agents.files]
protect = ["/srv/app/secrets/", "/opt/billing/token.txt", "~/.config/acme/", "/srv/app/secrets/"]
allow = ["~/.aws/config"]

[[agents]]
name = "reviewer"
owner = "bob"
"#;

    #[test]
    fn catalogue_expands_over_every_home_for_all_agents() {
        let plan = resolve(&config(""), &homes());
        assert!(plan.agents.is_empty());
        let (home, absolute) = catalogue_paths();
        assert_eq!(
            plan.all_agents.len(),
            home * 3 + absolute,
            "{:#?}",
            plan.all_agents
        );
        for home in ["/home/alice", "/home/bob", "/root"] {
            let aws = find(&plan.all_agents, &format!("{home}/.aws/credentials"));
            assert!(!aws.tree);
            assert_eq!(aws.scope, Scope::AllAgents);
            assert_eq!(
                aws.why.to_string(),
                "catalogue (cloud CLIs): AWS access keys"
            );
            assert_eq!(aws.pattern.to_string(), "~/.aws/credentials");

            let gcloud = find(&plan.all_agents, &format!("{home}/.config/gcloud"));
            assert!(gcloud.tree, "~/.config/gcloud/ is a tree");
            let azure = find(&plan.all_agents, &format!("{home}/.azure"));
            assert!(azure.tree, "~/.azure/ is a tree");
            find(&plan.all_agents, &format!("{home}/.cargo/credentials"));
            find(&plan.all_agents, &format!("{home}/.config/gh/hosts.yml"));
        }
        let shadow = find(&plan.all_agents, "/etc/shadow");
        assert_eq!(
            (shadow.tree, shadow.why.to_string()),
            (
                false,
                "catalogue (system secrets): password hashes".to_owned()
            )
        );
        for dir in [
            "/var/run/secrets/kubernetes.io/serviceaccount",
            "/run/secrets/kubernetes.io/serviceaccount",
        ] {
            let token = find(&plan.all_agents, dir);
            assert!(token.tree, "{dir} is a tree");
            assert_eq!(token.scope, Scope::AllAgents);
        }
        assert_eq!(
            paths_of(&plan.private_dirs).collect::<Vec<_>>(),
            [
                Path::new("/home/alice/.ssh"),
                Path::new("/home/bob/.ssh"),
                Path::new("/root/.ssh"),
                Path::new("/home/alice/.gnupg"),
                Path::new("/home/bob/.gnupg"),
                Path::new("/root/.gnupg"),
            ]
        );
        assert!(
            plan.private_dirs[0]
                .why
                .to_string()
                .starts_with("catalogue (ssh and GnuPG keys): ")
        );
        assert_eq!(plan.names, [NamePattern::Dotenv]);
    }

    #[test]
    fn home_patterns_expand_for_every_home_and_absolute_ones_once() {
        let (home, absolute) = catalogue_paths();
        let plan = resolve(&config(""), &[PathBuf::from("/root")]);
        assert_eq!(plan.all_agents.len(), home + absolute);
        assert!(
            plan.all_agents
                .iter()
                .all(|planned| planned.path.is_absolute()
                    && (planned.path.starts_with("/root")
                        || planned.pattern.to_string().starts_with('/'))),
            "{:#?}",
            plan.all_agents
        );

        let plan = resolve(&config(""), &[]);
        assert_eq!(
            plan.all_agents.len(),
            absolute,
            "without homes only the absolute entries remain"
        );
        assert!(
            plan.all_agents
                .iter()
                .all(|planned| planned.pattern.base() == crate::config::PatternBase::Absolute)
        );
        assert!(plan.private_dirs.is_empty());

        let twice = [PathBuf::from("/root"), PathBuf::from("/root")];
        let plan = resolve(&config(""), &twice);
        assert_eq!(
            plan.all_agents.len(),
            home + absolute,
            "a repeated home adds nothing"
        );
        assert_eq!(
            paths_of(&plan.private_dirs).collect::<Vec<_>>(),
            [Path::new("/root/.ssh"), Path::new("/root/.gnupg")]
        );
    }

    #[test]
    fn agent_protect_and_allow_lists_are_scoped_to_the_agent() {
        let config = config(CODER);
        let plan = resolve(&config, &homes());
        let coder_id = AgentId::from_name("coder");
        let coder = plan.agent(coder_id).expect("coder is planned");
        assert_eq!(coder.name, "coder");
        assert_eq!(
            paths_of(&coder.protect).collect::<Vec<_>>(),
            [
                Path::new("/srv/app/secrets"),
                Path::new("/opt/billing/token.txt"),
                Path::new("/home/alice/.config/acme"),
                Path::new("/home/bob/.config/acme"),
                Path::new("/root/.config/acme"),
            ],
            "expected the repeated /srv/app/secrets/ once"
        );
        for planned in &coder.protect {
            assert_eq!(planned.scope, Scope::Agent(coder_id));
            assert_eq!(planned.why.to_string(), "agent coder files.protect");
        }
        assert!(find(&coder.protect, "/srv/app/secrets").tree);
        assert!(!find(&coder.protect, "/opt/billing/token.txt").tree);
        assert!(find(&coder.protect, "/root/.config/acme").tree);

        assert_eq!(
            paths_of(&coder.allow).collect::<Vec<_>>(),
            [
                Path::new("/home/alice/.aws/config"),
                Path::new("/home/bob/.aws/config"),
                Path::new("/root/.aws/config"),
            ]
        );
        let allowed = &coder.allow[0];
        assert_eq!(allowed.scope, Scope::Agent(coder_id));
        assert_eq!(allowed.why.to_string(), "agent coder files.allow");
        assert!(!allowed.tree);

        let reviewer_id = AgentId::from_name("reviewer");
        let reviewer = plan.agent(reviewer_id).expect("reviewer is planned");
        assert!(reviewer.protect.is_empty() && reviewer.allow.is_empty());
        assert_eq!(
            plan.protected_from(reviewer_id).count(),
            plan.all_agents.len(),
            "an agent without [agents.files] gets the catalogue"
        );
        assert_eq!(
            plan.protected_from(coder_id).count(),
            plan.all_agents.len() + 5
        );
        assert!(
            plan.all_agents
                .iter()
                .all(|planned| planned.scope == Scope::AllAgents),
            "the catalogue is listed once, for all agents"
        );
        assert!(
            plan.agent(AgentId::from_name("nobody")).is_none(),
            "unknown agents have no plan"
        );
    }
}
