//! Compiles the config's `[agents.match]` rules into what the kernel matches on: file
//! identities, uids and cgroup ids.
use std::{
    collections::HashMap,
    fmt, fs,
    os::unix::fs::MetadataExt as _,
    path::{Component, Path},
};

use kya_common::tag::{InodeKey, MatchReason, TaskTag, origin};

use crate::{
    config::{AgentId, Config},
    identity::{self, IdentityError},
    paths::CGROUP2_ROOT,
    procfs::ProcessInfo,
};

/// The rules the kernel matches tasks against, in kernel terms.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KernelRules {
    pub exe: HashMap<InodeKey, u32>,
    pub uid: HashMap<u32, u32>,
    /// cgroup id → (agent id, level below the cgroup2 root).
    pub cgroup: HashMap<u64, (u32, u32)>,
}

/// Which kind of rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    Exe,
    Cgroup,
    Uid,
}

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Exe => "exe",
            Self::Cgroup => "cgroup",
            Self::Uid => "uid",
        })
    }
}

/// What one configured rule resolved to on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRule {
    pub agent: String,
    pub kind: RuleKind,
    pub value: String,
    /// What the kernel will match, or why the rule matches nothing right now.
    pub outcome: Result<String, String>,
}

/// The config's rules in kernel terms, plus what user space needs to match `/proc` entries.
#[derive(Debug, Clone, Default)]
pub struct CompiledRules {
    pub kernel: KernelRules,
    /// cgroup path (relative to the cgroup2 mount) → agent, for matching `/proc/PID/cgroup`.
    cgroup_paths: HashMap<String, AgentId>,
    pub resolved: Vec<ResolvedRule>,
}

/// Resolves every rule of `config` against this host, with the cgroup2 hierarchy at
/// `cgroup_root`.
#[must_use]
pub fn compile(config: &Config) -> CompiledRules {
    compile_with_cgroup_root(config, Path::new(CGROUP2_ROOT))
}

#[must_use]
pub fn compile_with_cgroup_root(config: &Config, cgroup_root: &Path) -> CompiledRules {
    let mut compiled = CompiledRules::default();
    let mut exe_owner: HashMap<InodeKey, (String, String)> = HashMap::new();
    for agent in config.agents() {
        let id = agent.id();
        let name = agent.name().to_owned();
        for exe in agent.rules().exe() {
            let shown = exe.display().to_string();
            let outcome = match identity::identity_of(exe) {
                Err(error @ IdentityError::Stat(_)) => Err(format!(
                    "cannot resolve ({error}); the rule matches nothing until the file exists and \
                     the config is reloaded"
                )),
                Err(error) => Err(format!(
                    "the identity the kernel sees cannot be established: {error}; the rule \
                     matches nothing until the config is reloaded"
                )),
                Ok(identity) => {
                    if let Some((other_agent, other_path)) = exe_owner.get(&identity) {
                        Err(format!(
                            "is the same file as {other_path} (agent {other_agent}); a file can \
                             belong to one agent only, so this rule is ignored"
                        ))
                    } else {
                        exe_owner.insert(identity, (name.clone(), shown.clone()));
                        compiled.kernel.exe.insert(identity, id.get());
                        Ok(format!(
                            "file dev {}:{} inode {}",
                            identity.dev >> 20,
                            identity.dev & 0xf_ffff,
                            identity.ino
                        ))
                    }
                }
            };
            compiled.resolved.push(ResolvedRule {
                agent: name.clone(),
                kind: RuleKind::Exe,
                value: shown,
                outcome,
            });
        }
        for cgroup in agent.rules().cgroup() {
            let shown = cgroup.display().to_string();
            let relative = cgroup.strip_prefix("/").unwrap_or(cgroup);
            let directory = cgroup_root.join(relative);
            compiled.cgroup_paths.insert(shown.clone(), id);
            let outcome = match fs::metadata(&directory) {
                Err(error) => Err(format!(
                    "{} does not exist ({error}); processes moved into it later are matched \
                     once it exists and the config is reloaded",
                    directory.display()
                )),
                Ok(metadata) => {
                    let level = u32::try_from(
                        relative
                            .components()
                            .filter(|part| matches!(part, Component::Normal(_)))
                            .count(),
                    )
                    .unwrap_or(u32::MAX);
                    compiled
                        .kernel
                        .cgroup
                        .insert(metadata.ino(), (id.get(), level));
                    Ok(format!("cgroup id {} at level {level}", metadata.ino()))
                }
            };
            compiled.resolved.push(ResolvedRule {
                agent: name.clone(),
                kind: RuleKind::Cgroup,
                value: shown,
                outcome,
            });
        }
        for &uid in agent.rules().uid() {
            compiled.kernel.uid.insert(uid, id.get());
            compiled.resolved.push(ResolvedRule {
                agent: name.clone(),
                kind: RuleKind::Uid,
                value: uid.to_string(),
                outcome: Ok(format!("uid {uid}")),
            });
        }
    }
    compiled
}

impl CompiledRules {
    /// The tag a process gets from its own attributes, checked in the kernel's order: the
    /// executable, then the uid, then the cgroup (deepest rule first).
    #[must_use]
    pub fn match_process(&self, process: &ProcessInfo) -> Option<TaskTag> {
        let tag = |agent: u32, reason| TaskTag::new(agent, reason, origin::ADOPTED);
        if let Some(agent) = process
            .exe_identity
            .and_then(|identity| self.kernel.exe.get(&identity))
        {
            return Some(tag(*agent, MatchReason::Exe));
        }
        if let Some(agent) = [process.real_uid, process.effective_uid]
            .iter()
            .find_map(|uid| self.kernel.uid.get(uid))
        {
            return Some(tag(*agent, MatchReason::Uid));
        }
        let mut path = process.cgroup.as_deref()?;
        while path.len() > 1 {
            if let Some(agent) = self.cgroup_paths.get(path) {
                return Some(tag(agent.get(), MatchReason::Cgroup));
            }
            path = &path[..path.rfind('/').unwrap_or(0).max(1)];
        }
        None
    }
}
