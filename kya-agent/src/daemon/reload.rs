//! `kya reload` and SIGHUP: read the config file again and put it in force as a whole, or
//! change nothing and say why.
use std::{
    path::PathBuf,
    sync::{Arc, RwLock},
};

use super::{
    file_watch::WatchDirs,
    kernel_task::{KernelCallError, KernelHandle},
    live_config::LiveConfig,
    net_refresh::HostNames,
};
use crate::{
    config::{Config, ConfigErrors},
    error_chain,
    files::tables::{FileTables, OwnFiles},
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
}

impl Reloader {
    /// Reads the config file again and, if it is valid and fits, puts it in force.
    pub async fn reload(&self) -> Result<Reloaded, ReloadError> {
        let _one_at_a_time = self.serial.lock().await;
        let path = self.path.clone().ok_or(ReloadError::NoConfigFile)?;
        let (config, policy) = {
            let own = self.own.clone();
            let path = path.clone();
            // Resolving files and host names blocks; keep it off the async workers.
            tokio::task::spawn_blocking(move || {
                let config = Config::load(&path)?;
                crate::network::metadata::log_warnings(&config);
                let policy = Policy::compile(&config, &own);
                policy.report().log_problems();
                Ok((config, policy))
            })
            .await
            .expect("the reload's resolution does not panic")
            .map_err(ReloadError::Config)?
        };
        policy
            .check_fits()
            .map_err(|too_large| ReloadError::TooLarge {
                too_large,
                path: path.clone(),
            })?;
        let (previous_generation, previous) = self.live.snapshot();
        let generation = previous_generation + 1;
        let file_tables = policy.file_tables.clone();
        let hosts = policy.net_table.hosts.clone();
        match self.kernel.apply_policy(policy, generation).await {
            Ok(adopted) => {
                self.publish(file_tables, hosts, &config);
                let reloaded = Reloaded {
                    config: path,
                    generation,
                    agents: config.agents().len(),
                    adopted,
                };
                self.live.replace(generation, Arc::new(config));
                // The compilation's tables are gone: hand their pages back.
                super::memory::release_free_heap();
                tracing::info!(
                    config = %reloaded.config.display(),
                    generation,
                    agents = reloaded.agents,
                    adopted,
                    "config reloaded"
                );
                Ok(reloaded)
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
