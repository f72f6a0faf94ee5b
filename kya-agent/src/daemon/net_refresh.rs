//! Keeps the network allowlist current: host names are resolved again periodically and the
//! resolvers in `/etc/resolv.conf` re-read, and the kernel gets the new addresses.
use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    thread,
    time::Duration,
};

use super::{
    kernel_task::{KernelHandle, Update},
    live_config::LiveConfig,
};
use crate::{
    config::Config,
    network::{
        resolve_host, system_nameservers,
        table::{self, NetTable},
    },
};

/// How often host names are resolved again. The system resolver does not expose record TTLs,
/// so this is a bound on how stale an address can get rather than the records' own expiry.
const REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// Host names by canonical address, shared with the event reader.
pub type HostNames = Arc<RwLock<HashMap<[u8; 16], String>>>;

/// Compiles the allowlists against the resolvers and names as they resolve now, logging the
/// rules that allow nothing (a name that does not resolve is a warning, never a failure).
#[must_use]
pub fn compile_now(config: &Config) -> NetTable {
    let table = table::compile(config, &system_nameservers(), &resolve_host);
    for rule in &table.rules {
        if let Err(problem) = &rule.outcome {
            tracing::warn!(agent = %rule.agent, rule = %rule.rule, problem = %problem, "network rule allows nothing now");
        }
    }
    table
}

/// Refreshes the kernel's allowlist every `REFRESH_INTERVAL` from the config in force, until
/// the kernel thread stops.
pub fn spawn(
    live: Arc<LiveConfig>,
    mut current: NetTable,
    kernel: KernelHandle,
    hosts: HostNames,
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("kya-net-refresh".to_owned())
        .spawn(move || {
            loop {
                thread::sleep(REFRESH_INTERVAL);
                // A reload landing in between makes the table stale: compile it again.
                loop {
                    let (generation, config) = live.snapshot();
                    let next = compile_now(&config);
                    if next == current {
                        break;
                    }
                    match kernel.set_net_table_blocking(next.clone(), generation) {
                        Ok(Ok(Update::Applied)) => {
                            hosts.write().expect("hosts lock").clone_from(&next.hosts);
                            tracing::info!(
                                entries = next.entries.len(),
                                "network allowlist refreshed"
                            );
                            current = next;
                            break;
                        }
                        Ok(Ok(Update::Stale)) => {}
                        Ok(Err(message)) => {
                            tracing::error!(error = %message, "updating the network allowlist failed; the previous one stays");
                            break;
                        }
                        Err(_) => return,
                    }
                }
            }
        })
}
