//! The grant service: one thread that owns the durable grant store and is the only writer of
//! grants to the kernel. Control requests (approve, grant, revoke, ...) and what the kernel
//! reports (denials that become requests, grant uses) arrive on separate channels; control
//! requests are always served first, so a flooding agent cannot delay a human's decision.
mod commands;
pub mod containment;
mod error;
mod observations;
mod proofs;
mod upkeep;
mod views;

use std::{
    collections::HashSet,
    sync::{Arc, RwLock},
    thread,
    time::Duration,
};

use tokio::sync::{mpsc, oneshot, watch};

pub use self::{observations::Observation, proofs::Approvals};
use super::{kernel_task::KernelHandle, live_config::LiveConfig};
use crate::{
    control::protocol::{Request, Response},
    events::EventLog,
    files::tables::FileTables,
    grants::{authority::Caller, store::Store},
    metrics::Metrics,
};

/// Kernel observations queued for the service at most; beyond this they are dropped (and
/// counted) rather than letting a flood grow the daemon's memory.
const OBSERVATION_QUEUE: usize = 4_096;

/// How often grants are checked for expiry and single-use grants for their use.
const UPKEEP_INTERVAL: Duration = Duration::from_millis(500);

/// What the service works with.
pub struct GrantService {
    pub store: Store,
    pub config: Arc<LiveConfig>,
    pub kernel: KernelHandle,
    pub file_tables: Arc<RwLock<FileTables>>,
    pub events: Arc<EventLog>,
    pub metrics: Arc<Metrics>,
    /// Pending request counts changed since the last save.
    pub counts_changed: bool,
    /// Single-use grants whose kernel token was found spent at the last upkeep but whose use
    /// has not been reported yet.
    pub spent_unreported: HashSet<u32>,
    /// Bumped whenever a pending request appears, changes or ends; `kya watch` connections
    /// follow it. A watch channel holds one value: a slow follower never holds the service up.
    pub pending_changed: watch::Sender<u64>,
    /// Outstanding challenges and TOTP secrets, for agents whose approvals need a proof.
    pub approvals: Approvals,
}

struct ControlCall {
    request: Request,
    caller: Caller,
    reply: oneshot::Sender<Response>,
}

/// A cloneable way in to the service.
#[derive(Clone)]
pub struct GrantHandle {
    control: mpsc::Sender<ControlCall>,
    internal: mpsc::Sender<containment::Internal>,
    observations: mpsc::Sender<Observation>,
    pending_changed: watch::Receiver<u64>,
}

impl GrantHandle {
    /// Carries out a grant request for `caller` and returns the answer.
    pub async fn call(&self, request: Request, caller: Caller) -> Response {
        let (reply, answer) = oneshot::channel();
        let call = ControlCall {
            request,
            caller,
            reply,
        };
        if self.control.send(call).await.is_err() {
            return stopped();
        }
        answer.await.unwrap_or_else(|_| stopped())
    }

    /// Asks the service for something only the daemon asks (the owner watch, the reload);
    /// `make` builds the call around its reply channel. `None` if the service stopped.
    pub async fn internal<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> containment::Internal,
    ) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.internal.send(make(reply)).await.ok()?;
        answer.await.ok()
    }

    /// Follows changes of the pending requests (new, repeated, answered): the receiver sees
    /// that something changed since it last looked, not what.
    pub fn pending_changes(&self) -> watch::Receiver<u64> {
        self.pending_changed.clone()
    }

    /// Queues what the kernel reported; `false` if the queue is full and it was dropped.
    pub fn observe(&self, observation: Observation) -> bool {
        self.observations.try_send(observation).is_ok()
    }
}

fn stopped() -> Response {
    Response::Error {
        message: "the daemon's grant service has stopped".to_owned(),
    }
}

impl GrantService {
    /// Tells `kya watch` connections that the pending requests changed.
    pub(super) fn pending_changed(&self) {
        self.pending_changed
            .send_modify(|generation| *generation += 1);
    }

    /// Puts every stored grant that has not ended into the kernel, ending the ones that have.
    /// After a takeover (`reused_maps`) the kernel kept the grants in force all along: grants
    /// it holds that the store does not know are removed, and a single-use grant whose token
    /// the kernel spent while no daemon ran is recorded as used, not put back.
    pub async fn restore(&mut self, reused_maps: bool) {
        self.expire_due().await;
        let mut in_kernel = HashSet::new();
        let mut unspent = HashSet::new();
        if reused_maps {
            if let (Ok(ids), Ok(tokens)) = (
                self.kernel.grant_ids().await,
                self.kernel.unspent_once_grants().await,
            ) {
                in_kernel = ids;
                unspent = tokens;
            } else {
                tracing::error!(
                    "cannot read the grants the kernel kept; putting the stored ones back"
                );
            }
        }
        for stale in in_kernel
            .iter()
            .filter(|id| !self.store.state().grants.contains_key(id))
        {
            self.remove_from_kernel(*stale, false).await;
        }
        let grants: Vec<_> = self.store.state().grants.values().cloned().collect();
        for grant in grants {
            if grant.once && in_kernel.contains(&grant.id) && !unspent.contains(&grant.id) {
                self.record_lost_use(&grant).await;
                continue;
            }
            if let Err(error) = self.insert_in_kernel(&grant).await {
                tracing::error!(grant = grant.id, error = %error, "cannot restore grant; it stays ended until granted again");
            }
        }
    }

    /// Runs the service on its own thread (its store writes block on disk syncs), driven by
    /// `runtime`, until `GrantThread::stop`.
    pub fn spawn(
        mut self,
        runtime: tokio::runtime::Handle,
    ) -> std::io::Result<(GrantHandle, GrantThread)> {
        let (control, mut control_inbox) = mpsc::channel::<ControlCall>(64);
        let (internal, mut internal_inbox) = mpsc::channel::<containment::Internal>(16);
        let (observations, mut observation_inbox) = mpsc::channel(OBSERVATION_QUEUE);
        let (stop, mut stopped) = oneshot::channel::<()>();
        let pending_changed = self.pending_changed.subscribe();
        let thread = thread::Builder::new()
            .name("kya-grants".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut upkeep = tokio::time::interval(UPKEEP_INTERVAL);
                    loop {
                        tokio::select! {
                            biased;
                            _ = &mut stopped => break,
                            call = control_inbox.recv() => {
                                let Some(call) = call else { break };
                                let response = self.handle(call.request, &call.caller).await;
                                let _ = call.reply.send(response);
                            }
                            call = internal_inbox.recv() => {
                                let Some(call) = call else { break };
                                self.internal(call).await;
                            }
                            _ = upkeep.tick() => self.upkeep().await,
                            observation = observation_inbox.recv() => {
                                let Some(observation) = observation else { break };
                                self.observe(observation).await;
                            }
                        }
                    }
                });
            })?;
        Ok((
            GrantHandle {
                control,
                internal,
                observations,
                pending_changed,
            },
            GrantThread { stop, thread },
        ))
    }
}

/// The service's thread, to stop before the runtime that drives it goes away.
pub struct GrantThread {
    stop: oneshot::Sender<()>,
    thread: thread::JoinHandle<()>,
}

impl GrantThread {
    /// Stops the service after the call it is serving, and waits for it.
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}
