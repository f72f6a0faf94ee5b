//! `kya reload` and SIGHUP: read the config file again and put it in force as a whole, or
//! change nothing and say why.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    sync::{Arc, RwLock},
};

use super::{
    file_watch::WatchDirs,
    grant_service::{GrantHandle, containment::Internal},
    kernel_task::{KernelCallError, KernelHandle},
    live_config::LiveConfig,
    net_refresh::HostNames,
};
use crate::{
    accounts::{self, Account},
    config::{Config, ConfigErrors},
    error_chain,
    files::tables::{FileTables, OwnFiles},
    grants::state::Containment,
    kernel::KernelError,
    metrics::Metrics,
    policy::{Policy, PolicyTooLarge},
};

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(
        "kya-agent runs the embedded default config (started without --config): there is no \
         file to read again; restart it with --config FILE"
    )]
    NoConfigFile,
    #[error("{0}\nthe config in force is unchanged")]
    Config(ConfigErrors),
    #[error("{}: {too_large}; the config in force is unchanged", .path.display())]
    TooLarge {
        too_large: PolicyTooLarge,
        path: PathBuf,
    },
    #[error(
        "the kernel refused the new policy ({}); the previous config was put back in force{}",
        error_chain(.refused),
        if *.restored { "" } else { ", but that failed too: restart kya-agent" }
    )]
    Kernel {
        refused: KernelError,
        restored: bool,
    },
    #[error("the daemon's kernel thread has stopped")]
    Gone,
}

/// A reload that took effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    pub config: PathBuf,
    /// Counts reloads since the daemon started.
    pub generation: u64,
    pub agents: usize,
    /// Running processes the new rules tagged.
    pub adopted: usize,
}

/// Everything a reload replaces.
pub struct Reloader {
    /// The `--config` file; `None` when the daemon runs the embedded default.
    pub path: Option<PathBuf>,
    pub own: OwnFiles,
    pub live: Arc<LiveConfig>,
    pub kernel: KernelHandle,
    pub file_tables: Arc<RwLock<FileTables>>,
    pub hosts: HostNames,
    pub metrics: Arc<Metrics>,
    pub watch: Option<WatchDirs>,
    /// One reload at a time: each must start from the config the previous one left.
    pub serial: tokio::sync::Mutex<()>,
    /// Where containment is recorded and ended.
    pub grants: GrantHandle,
    /// Wakes the owner watch for a check now.
    pub owner_check: Arc<tokio::sync::Notify>,
}

/// Which contained agents stay contained under `config` (their owner there is still gone, or
/// cannot be looked up), and which are released, with why.
#[must_use]
pub fn releases(
    config: &Config,
    contained: &BTreeMap<String, Containment>,
) -> (BTreeSet<String>, Vec<(String, String)>) {
    let mut kept = BTreeSet::new();
    let mut released = Vec::new();
    for agent in contained.keys() {
        match config.agent_by_name(agent) {
            None => released.push((
                agent.clone(),
                "the agent is no longer in the config".to_owned(),
            )),
            Some(found) => match accounts::state_of(found.owner()) {
                Account::Living => released.push((
                    agent.clone(),
                    format!("its owner {} is a living account", found.owner()),
                )),
                Account::Gone(_) | Account::Unknown => {
                    kept.insert(agent.clone());
                }
            },
        }
    }
    (kept, released)
}

impl Reloader {
    /// Reads the config file again and, if it is valid and fits, puts it in force. Contained
    /// agents whose owner (in the new config) is a living account are released; the others
    /// stay contained.
    pub async fn reload(&self) -> Result<Reloaded, ReloadError> {
        let _one_at_a_time = self.serial.lock().await;
        let path = self.path.clone().ok_or(ReloadError::NoConfigFile)?;
        let contained = self
            .grants
            .internal(|reply| Internal::Contained { reply })
            .await
            .ok_or(ReloadError::Gone)?;
        let (config, policy, mut releases) = {
            let own = self.own.clone();
            let path = path.clone();
            // Resolving files, host names and accounts blocks; keep it off the async workers.
            tokio::task::spawn_blocking(move || {
                let config = Config::load(&path)?;
                crate::network::metadata::log_warnings(&config);
                let (kept, releases) = releases(&config, &contained);
                let config = config.with_suspended(kept.iter().map(String::as_str));
                let policy = Policy::compile(&config, &own);
                policy.report().log_problems();
                Ok((config, policy, releases))
            })
            .await
            .expect("the reload's resolution does not panic")
            .map_err(ReloadError::Config)?
        };
        // Ended before the new policy is in force: a check running meanwhile must not find
        // them contained and suspend them again. A policy the kernel then refuses leaves them
        // released all the same: their owner is living.
        for (agent, why) in releases.drain(..) {
            tracing::info!(agent = %agent, why = %why, "containment ended");
            let _ = self
                .grants
                .internal(|reply| Internal::Release { agent, why, reply })
                .await;
        }
        let (generation, adopted) = self.put_in_force(config.clone(), policy, &path).await?;
        // Owners the new config names may be gone already.
        self.owner_check.notify_one();
        let reloaded = Reloaded {
            config: path,
            generation,
            agents: config.agents().len(),
            adopted,
        };
        tracing::info!(
            config = %reloaded.config.display(),
            generation,
            agents = reloaded.agents,
            adopted,
            "config reloaded"
        );
        Ok(reloaded)
    }

    /// Puts the config in force again with the allowlists of the contained agents suspended
    /// (the owner watch calls this when it contains an agent). Nothing changes if they already
    /// are. The contained agents are read under the reload's lock, so a reload's releases are
    /// never undone by a check that read them before.
    pub async fn suspend(&self) -> Result<(), ReloadError> {
        let _one_at_a_time = self.serial.lock().await;
        let contained: BTreeSet<String> = self
            .grants
            .internal(|reply| Internal::Contained { reply })
            .await
            .ok_or(ReloadError::Gone)?
            .into_keys()
            .collect();
        let current = self.live.current();
        let config = (*current)
            .clone()
            .with_suspended(contained.iter().map(String::as_str));
        if config.suspended() == current.suspended() {
            return Ok(());
        }
        let own = self.own.clone();
        let (config, policy) = tokio::task::spawn_blocking(move || {
            let policy = Policy::compile(&config, &own);
            (config, policy)
        })
        .await
        .expect("compiling a policy does not panic");
        let origin = config.origin().to_owned();
        self.put_in_force(config, policy, &origin).await?;
        tracing::warn!(agents = ?contained, "allowlists of contained agents suspended");
        Ok(())
    }

    /// Puts `config`, compiled as `policy`, in force as the next generation; its generation
    /// and the processes it tagged.
    async fn put_in_force(
        &self,
        config: Config,
        policy: Policy,
        path: &std::path::Path,
    ) -> Result<(u64, usize), ReloadError> {
        policy
            .check_fits()
            .map_err(|too_large| ReloadError::TooLarge {
                too_large,
                path: path.to_owned(),
            })?;
        let (previous_generation, previous) = self.live.snapshot();
        let generation = previous_generation + 1;
        let file_tables = policy.file_tables.clone();
        let hosts = policy.net_table.hosts.clone();
        match self.kernel.apply_policy(policy, generation).await {
            Ok(adopted) => {
                self.publish(file_tables, hosts, &config);
                self.live.replace(generation, Arc::new(config));
                // The compilation's tables are gone: hand their pages back.
                super::memory::release_free_heap();
                Ok((generation, adopted))
            }
            Err(KernelCallError::Gone) => Err(ReloadError::Gone),
            Err(KernelCallError::Kernel(refused)) => {
                Err(self.restore(&previous, previous_generation, refused).await)
            }
        }
    }

    /// Makes the tables the kernel now enforces visible to the event reader, the file watcher
    /// and the metrics.
    fn publish(
        &self,
        file_tables: FileTables,
        hosts: std::collections::HashMap<[u8; 16], String>,
        config: &Config,
    ) {
        if let Some(watch) = &self.watch {
            watch.add(&file_tables.watch);
        }
        *self.file_tables.write().expect("file tables lock") = file_tables;
        *self.hosts.write().expect("hosts lock") = hosts;
        self.metrics.add_config(config);
    }

    /// Puts the previous config back in force after the kernel refused part of the new one.
    async fn restore(
        &self,
        previous: &Config,
        generation: u64,
        refused: KernelError,
    ) -> ReloadError {
        tracing::error!(error = %error_chain(&refused), "the kernel refused the reloaded config; restoring the previous one");
        let policy = tokio::task::block_in_place(|| Policy::compile(previous, &self.own));
        let restored = self.kernel.apply_policy(policy, generation).await.is_ok();
        if !restored {
            tracing::error!("restoring the previous config failed; restart kya-agent");
        }
        ReloadError::Kernel { refused, restored }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::accounts::Gone;

    fn contained(agents: &[&str]) -> BTreeMap<String, Containment> {
        agents
            .iter()
            .map(|agent| {
                let containment = Containment {
                    owner: "gone-owner".to_owned(),
                    reason: Gone::Missing,
                    since_ms: 0,
                    dropped: Vec::new(),
                };
                ((*agent).to_owned(), containment)
            })
            .collect()
    }

    #[test]
    fn a_reload_releases_only_agents_whose_owner_lives_or_that_are_gone() {
        let text = "[[agents]]\nname = \"living\"\nowner = \"root\"\n\
                    [[agents]]\nname = \"ghost\"\nowner = \"kya-no-such-user-x\"\n";
        let config = Config::from_toml_str(text, Path::new("kya.toml")).expect("valid config");
        let (kept, released) = releases(&config, &contained(&["living", "ghost", "removed"]));
        assert_eq!(kept.into_iter().collect::<Vec<_>>(), ["ghost"]);
        let released: BTreeMap<_, _> = released.into_iter().collect();
        assert_eq!(released.len(), 2, "{released:?}");
        assert!(released["living"].contains("owner root is a living account"));
        assert!(released["removed"].contains("no longer in the config"));
    }
}
