//! Reads denial events from the kernel's ring buffer as they arrive, explains them and keeps
//! them for `kya events`.
use std::sync::{Arc, RwLock};

use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;

use super::{
    grant_service::{GrantHandle, Observation},
    live_config::LiveConfig,
    log_limit::LogLimit,
};
use crate::{
    control::protocol::DenialRecord,
    events::{self, EventLog},
    files::tables::FileTables,
    metrics::{LossStage, Metrics},
    text::{AgentText, or_dash},
};

/// Events handled between two yields to the rest of the daemon.
const BATCH: usize = 256;

/// What explaining an event needs: the config and the file rules as last resolved.
pub struct Explainer {
    pub config: Arc<LiveConfig>,
    pub file_tables: Arc<RwLock<FileTables>>,
    /// Host names of allowlisted addresses, to name a refused peer the daemon knows.
    pub hosts: super::net_refresh::HostNames,
}

/// Reads events until the ring buffer fails (it only does when the daemon stops).
pub async fn run(
    ring: RingBuf<MapData>,
    explainer: Explainer,
    log: Arc<EventLog>,
    grants: GrantHandle,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    let mut dropped = 0_u64;
    let mut log_limit = LogLimit::default();
    // SAFETY: the ring buffer owns its descriptor and keeps it open for as long as the AsyncFd
    // holds it.
    let mut ring = unsafe { AsyncFd::register(ring) }.map_err(std::io::Error::from)?;
    loop {
        let mut ready = ring.readable_mut().await?;
        let ring = ready.get_inner_mut();
        let mut handled = 0;
        while handled < BATCH {
            let Some(item) = ring.next() else { break };
            handled += 1;
            let Some(event) = events::decode(&item) else {
                tracing::warn!(bytes = item.len(), "short denial event ignored");
                continue;
            };
            let mut record = {
                let tables = explainer.file_tables.read().expect("file tables lock");
                events::describe(&event, &explainer.config.current(), &tables.rules)
            };
            if record.peer.is_some() {
                record.host = explainer
                    .hosts
                    .read()
                    .expect("hosts lock")
                    .get(&event.addr)
                    .map(|host| AgentText::from(host.as_str()));
            }
            if log_limit.allow() {
                log_record(&record);
            }
            if let Some(observation) = Observation::from_event(&event, &record)
                && !grants.observe(observation)
            {
                dropped += 1;
                metrics.set_events_lost_total(LossStage::DaemonQueue, dropped);
                tracing::warn!("grant service busy; a request or grant use was not recorded");
            }
            log.push(record);
        }
        if handled < BATCH {
            // Drained: wait for the kernel to say there is more.
            ready.clear_ready();
        }
        drop(ready);
        // Under a flood the ring never drains: give the rest of the daemon (the control socket
        // above all) its turn between batches.
        tokio::task::yield_now().await;
    }
}

/// Logs one denial or grant use with its structured fields.
fn log_record(record: &DenialRecord) {
    if let Some(grant) = &record.grant {
        tracing::info!(
            kind = %record.kind,
            agent = %record.agent,
            pid = record.pid,
            grant = %grant,
            "allowed by grant"
        );
    } else {
        tracing::warn!(
            kind = %record.kind,
            agent = %record.agent,
            pid = record.pid,
            exe = %or_dash(record.exe.as_ref()),
            path = %or_dash(record.path.as_ref()),
            name = %or_dash(record.name.as_ref()),
            dev = record.dev.as_deref().unwrap_or("-"),
            ino = record.ino.unwrap_or(0),
            target_pid = record.target_pid.unwrap_or(0),
            peer = record.peer.as_deref().unwrap_or("-"),
            protocol = record.protocol.as_deref().unwrap_or("-"),
            socket = %or_dash(record.socket.as_ref()),
            server_pid = record.server_pid.unwrap_or(0),
            server_exe = %or_dash(record.server_exe.as_ref()),
            why = %record.why,
            "denied"
        );
    }
}
