//! The policy: a config compiled against this host into everything the kernel enforces (the
//! file protection tables, the network allowlist, the match rules), with a report of what each
//! rule resolved to. The daemon puts it in force at start and on every reload
//! (`Kernel::apply_policy`), and recompiles the file and network parts as the filesystem and
//! DNS change; `kya-agent check-config` prints the report. Compiling reads the filesystem, the
//! user database and DNS, so it blocks.
use kya_common::maps as map_names;

use crate::{
    config::Config,
    files::{
        self,
        tables::{self as file_tables, FileTables, OwnFiles, ResolvedFileRule},
    },
    identity::Mounts,
    network::{
        resolve_host, system_nameservers,
        table::{self as net_table, NetTable, ResolvedNetRule},
    },
    tagging::rules::{self, CompiledRules, ResolvedRule},
};

/// Everything the kernel enforces for one config.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub file_tables: FileTables,
    pub net_table: NetTable,
    /// The match rules, in kernel terms and as user space matches `/proc` entries.
    pub rules: CompiledRules,
    /// Ids of the configured agents, which get their counters and event budgets before any rule
    /// can tag a task.
    pub agents: Vec<u32>,
}

/// A policy with more entries than one of the kernel maps holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the config needs {needed} entries in the kernel map {map}, which holds {capacity}; \
     protect or allow fewer, broader paths or networks"
)]
pub struct PolicyTooLarge {
    pub map: &'static str,
    pub needed: usize,
    pub capacity: u32,
}

/// What each configured rule of a compiled policy resolved to on this host: a view of the
/// policy's own tables.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    /// `[agents.match]` rules: what the kernel matches, or why a rule matches nothing.
    pub processes: &'a [ResolvedRule],
    /// Protected and allowed paths: the catalogue, `[agents.files]` and kya's own files.
    pub files: &'a [ResolvedFileRule],
    /// Network allowlists: the networks each rule allows, or why it allows nothing now.
    pub network: &'a [ResolvedNetRule],
}

impl Policy {
    /// Compiles `config`, with kya's own files `own`, against this host now.
    #[must_use]
    pub fn compile(config: &Config, own: &OwnFiles) -> Self {
        let config = config.enforced();
        let config = config.as_ref();
        Self {
            file_tables: files_now(config, own),
            net_table: network_now(config),
            rules: rules::compile(config),
            agents: config.agents().iter().map(|a| a.id().get()).collect(),
        }
    }

    /// What each rule resolved to.
    #[must_use]
    pub fn report(&self) -> Report<'_> {
        Report {
            processes: &self.rules.resolved,
            files: &self.file_tables.rules,
            network: &self.net_table.rules,
        }
    }

    /// Refuses a policy that cannot fit in the maps, before any of it is written.
    pub fn check_fits(&self) -> Result<(), PolicyTooLarge> {
        let sizes = [
            (
                map_names::PROTECTED_INODES,
                self.file_tables.inodes.len(),
                map_names::MAX_PROTECTED_INODES,
            ),
            (
                map_names::PROTECTED_NAMES,
                self.file_tables.names.len(),
                map_names::MAX_PROTECTED_NAMES,
            ),
            (
                map_names::NET_ALLOW,
                self.net_table.entries.len(),
                map_names::MAX_NET_RULES,
            ),
            (
                map_names::EXE_RULES,
                self.rules.kernel.exe.len(),
                map_names::MAX_EXE_RULES,
            ),
            (
                map_names::UID_RULES,
                self.rules.kernel.uid.len(),
                map_names::MAX_UID_RULES,
            ),
            (
                map_names::CGROUP_RULES,
                self.rules.kernel.cgroup.len(),
                map_names::MAX_CGROUP_RULES,
            ),
        ];
        match sizes
            .into_iter()
            .find(|&(_, needed, capacity)| needed > capacity as usize)
        {
            Some((map, needed, capacity)) => Err(PolicyTooLarge {
                map,
                needed,
                capacity,
            }),
            None => Ok(()),
        }
    }
}

/// The file protection tables of `config` now: the catalogue, the config's file rules and
/// kya's own files resolved against the filesystem.
#[must_use]
pub fn files_now(config: &Config, own: &OwnFiles) -> FileTables {
    let config = config.enforced();
    let config = config.as_ref();
    let mut mounts = Mounts::of_this_process();
    let mut tables =
        file_tables::resolve(&files::resolve(config, &files::system_homes()), &mut mounts);
    tables.add_sockets(config, &mut mounts);
    tables.add_own_files(own, &mut mounts);
    tables
}

/// The network allowlist of `config` now, against the resolvers and names as they resolve now
/// (a name that does not resolve allows nothing, and the report says why).
#[must_use]
pub fn network_now(config: &Config) -> NetTable {
    net_table::compile(&config.enforced(), &system_nameservers(), &resolve_host)
}

impl Report<'_> {
    /// Logs the rules that match or allow nothing now: a warning, never a failure (a rule may
    /// start to match later).
    pub fn log_problems(&self) {
        for rule in self.processes {
            if let Err(problem) = &rule.outcome {
                tracing::warn!(agent = %rule.agent, kind = %rule.kind, value = %rule.value, problem = %problem, "rule matches nothing");
            }
        }
        for rule in self.files {
            if let Some(problem) = &rule.unresolved {
                tracing::warn!(path = %crate::text::AgentText::from(rule.path.as_path()), problem = %problem, "protected by path only: the identity the kernel sees is unknown");
            }
        }
        log_network_problems(self.network);
    }
}

/// Logs the network rules that allow nothing now.
pub fn log_network_problems(rules: &[ResolvedNetRule]) {
    for rule in rules {
        if let Err(problem) = &rule.outcome {
            tracing::warn!(agent = %rule.agent, rule = %rule.rule, problem = %problem, "network rule allows nothing now");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap as StdHashMap;

    use super::*;

    #[test]
    fn a_policy_larger_than_a_map_is_refused_naming_the_map() {
        let mut policy = Policy::default();
        policy.rules.kernel.uid = (0..=map_names::MAX_UID_RULES)
            .map(|uid| (uid, 1))
            .collect::<StdHashMap<_, _>>();
        let refused = policy.check_fits().expect_err("too many uid rules");
        assert_eq!(refused.map, map_names::UID_RULES);
        assert_eq!(refused.needed, map_names::MAX_UID_RULES as usize + 1);
        assert!(refused.to_string().contains("protect or allow fewer"));
        assert_eq!(Policy::default().check_fits(), Ok(()));
    }
}
