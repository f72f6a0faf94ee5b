//! Keeps the metrics current: every few seconds the kernel's own counts (which include denials
//! whose events were lost), tagged processes and map sizes are read and published. Grant
//! metrics are published by the grant service as its state changes.
use std::{sync::Arc, time::Duration};

use kya_common::{event::DenyKind, maps::CountKey};

use super::{
    kernel_task::{KernelCallError, KernelHandle},
    live_config::LiveConfig,
};
use crate::{
    config::{AgentId, Config},
    error_chain,
    metrics::{InternalError, LossStage, Metrics},
};

/// How often the kernel's counts are read. Scrapes are usually 15 s or more apart.
const INTERVAL: Duration = Duration::from_secs(1);

/// Publishes the kernel's counts until the kernel thread stops.
pub async fn run(kernel: KernelHandle, live: Arc<LiveConfig>, metrics: Arc<Metrics>) {
    let mut ticks = tokio::time::interval(INTERVAL);
    loop {
        ticks.tick().await;
        let stats = match kernel.stats().await {
            Ok(stats) => stats,
            Err(KernelCallError::Gone) => return,
            Err(error) => {
                tracing::error!(error = %error_chain(&error), "reading the kernel's counts for metrics failed");
                continue;
            }
        };
        let config = live.current();
        for (key, total) in &stats.denials {
            if let Some((agent, kind)) = labels(&config, *key) {
                metrics.set_denied_total(agent, kind, *total);
            }
        }
        for (key, total) in &stats.grant_uses {
            if let Some((agent, kind)) = labels(&config, *key) {
                metrics.set_allowed_by_grant_total(agent, kind, *total);
            }
        }
        metrics.set_events_lost_total(LossStage::AgentBudget, stats.events_lost.agent_budget);
        metrics.set_events_lost_total(LossStage::KernelRingBuffer, stats.events_lost.ring_buffer);
        for agent in config.agents() {
            let processes = stats
                .tagged_processes
                .get(&agent.id().get())
                .copied()
                .unwrap_or(0);
            metrics.set_tagged_processes(agent.name(), processes);
        }
        for map in &stats.maps {
            metrics.set_map_entries(map.name, map.entries);
        }
        for (error, total) in InternalError::KERNEL.into_iter().zip(&stats.errors) {
            metrics.set_internal_errors_total(error, *total);
        }
    }
}

/// The agent name and kind of a kernel counter, if the agent is configured.
fn labels(config: &Config, key: CountKey) -> Option<(&str, DenyKind)> {
    let agent = config.agent_by_id(AgentId::from_raw(key.agent)?)?;
    Some((agent.name(), DenyKind::try_from(key.kind).ok()?))
}
