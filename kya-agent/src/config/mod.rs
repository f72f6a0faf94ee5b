//! The daemon's configuration: parsing the TOML file, validating it as a whole, and reporting
//! every mistake with its file, line, column, value and fix.
//!
//! - `schema`: the file as written, with byte spans (serde, `deny_unknown_fields`).
//! - `validate`: checks each value and the agents against each other.
//! - `agent`: the validated types the rest of the daemon uses.
//! - `path_pattern`: the `/…` and `~/…` path patterns of `[agents.files]`.
//! - `footholds`: the built-in catalogue of execution footholds (files others run later), which
//!   agents may read but not change; `files.allow_writes` may exempt only its entries.
//! - `network_rule`: the `network.allow` rules of `[agents.network]` (addresses, networks, host
//!   names and ports).
//! - `socket_path`: the sockets of `network.unix_deny` and `network.unix_allow` (paths and
//!   `@name`s).
//! - `approver_keys`: the OpenSSH public keys of `[approver_keys]`.
//! - `error`: how problems are located and reported.

mod agent;
mod approver_keys;
mod error;
pub mod footholds;
mod network_rule;
mod path_pattern;
mod schema;
mod socket_path;
mod validate;

#[cfg(test)]
mod tests;

use std::{
    borrow::Cow,
    collections::BTreeSet,
    fmt, fs,
    path::{Path, PathBuf},
};

pub use self::{
    agent::{
        Agent, AgentId, ApprovalMethod, FileRules, MAX_NAME_LEN, MatchRules, NetworkRules,
        OnOwnerGone, is_valid_name, is_valid_user_name,
    },
    approver_keys::ApproverKeys,
    error::{
        ConfigError, ConfigErrorKind, ConfigErrors, FileList, Location, PathProblem, TomlProblem,
        UnixList,
    },
    network_rule::{
        IpCidr, MAX_HOST_LEN, MAX_LABEL_LEN, NetworkRule, PortSpec, RuleProblem, Target,
    },
    path_pattern::{PathPattern, PatternBase, PatternProblem},
    socket_path::{
        MAX_ABSTRACT_NAME, SocketAddress, SocketPathProblem, parse_socket_address,
        parse_socket_path,
    },
};
use self::{error::Diagnostics, schema::RawConfig};

/// The commented default config, as shipped: a starting point for `/etc/kya/kya.toml`.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// The `origin` of [`Config::embedded_default`], shown where a file name would be.
const EMBEDDED_ORIGIN: &str = "<embedded default config>";

/// A valid configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    origin: PathBuf,
    agents: Vec<Agent>,
    approver_keys: ApproverKeys,
    /// Agents whose allowlists are suspended: contained because their owner is gone. Not read
    /// from the file: the daemon sets it.
    suspended: BTreeSet<String>,
}

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let text = fs::read_to_string(path)
            .map_err(|source| ConfigError::whole_file(path, ConfigErrorKind::Read { source }))?;
        Self::from_toml_str(&text, path)
    }

    /// Parses and validates `text`; `origin` is the file it came from, used in error messages.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Self, ConfigErrors> {
        let mut diag = Diagnostics::new(origin, text);
        let raw: RawConfig = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(error) => {
                diag.toml_error(&error);
                return Err(diag.finish().expect_err("a TOML error was just recorded"));
            }
        };
        let (agents, approval_spans) = validate::agents(raw.agents, &mut diag);
        let approver_keys = approver_keys::parse(raw.approver_keys, &mut diag);
        approver_keys::check_agents(&agents, &approval_spans, &approver_keys, &mut diag);
        diag.finish()?;
        Ok(Self {
            origin: origin.to_owned(),
            agents,
            approver_keys,
            suspended: BTreeSet::new(),
        })
    }

    /// The config in [`DEFAULT_TOML`].
    #[must_use]
    pub fn embedded_default() -> Self {
        Self::from_toml_str(DEFAULT_TOML, Path::new(EMBEDDED_ORIGIN))
            .unwrap_or_else(|errors| panic!("the embedded default config is invalid:\n{errors}"))
    }

    /// The file the config was read from.
    #[must_use]
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// The agents, in file order.
    #[must_use]
    pub fn agents(&self) -> &[Agent] {
        &self.agents
    }

    /// The public keys configured for `user` in `[approver_keys]`; empty if none.
    #[must_use]
    pub fn approver_keys(&self, user: &str) -> &[ssh_key::PublicKey] {
        self.approver_keys.get(user).map_or(&[], Vec::as_slice)
    }

    #[must_use]
    pub fn agent_by_name(&self, name: &str) -> Option<&Agent> {
        self.agents.iter().find(|agent| agent.name() == name)
    }

    #[must_use]
    pub fn agent_by_id(&self, id: AgentId) -> Option<&Agent> {
        self.agents.iter().find(|agent| agent.id() == id)
    }

    /// This config with the allowlists of the agents named in `names` suspended (see
    /// [`Config::enforced`]). Names of agents the config lacks are dropped.
    #[must_use]
    pub fn with_suspended<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Self {
        self.suspended = names
            .into_iter()
            .filter(|name| self.agent_by_name(name).is_some())
            .map(str::to_owned)
            .collect();
        self
    }

    /// The agents whose allowlists are suspended.
    #[must_use]
    pub fn suspended(&self) -> &BTreeSet<String> {
        &self.suspended
    }

    /// The config the kernel is given: suspended agents have no `files.allow`,
    /// `files.allow_writes`, `network.allow` or `network.unix_allow` and no DNS, whatever the
    /// file says. Every compilation of a policy goes through this.
    #[must_use]
    pub fn enforced(&self) -> Cow<'_, Self> {
        if self.suspended.is_empty() {
            return Cow::Borrowed(self);
        }
        let mut enforced = self.clone();
        for agent in &mut enforced.agents {
            if self.suspended.contains(agent.name()) {
                agent.suspend_allowlists();
            }
        }
        Cow::Owned(enforced)
    }

    /// Things that are valid but probably not what the user meant; the caller decides whether
    /// and how to log them.
    #[must_use]
    pub fn warnings(&self) -> Vec<ConfigWarning> {
        let mut warnings = Vec::new();
        if self.agents.is_empty() {
            warnings.push(ConfigWarning::NoAgents {
                file: self.origin.clone(),
            });
        }
        warnings
    }
}

/// A valid config that is probably not what the user meant.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigWarning {
    /// No `[[agents]]`: no process will be tagged.
    NoAgents { file: PathBuf },
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoAgents { file } => write!(
                f,
                "{}: no [[agents]] are defined, so no process will be tagged or confined",
                file.display()
            ),
        }
    }
}
