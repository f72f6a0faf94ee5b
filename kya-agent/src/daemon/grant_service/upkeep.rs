//! Recording decisions, and keeping the kernel and the store in step: grants go into the
//! kernel after they are durable, leave it when they end, and ended grants are recorded.
use std::collections::HashSet;

use kya_common::grant::{Grant, flag};
use nix::time::{ClockId, clock_gettime};

use super::{GrantService, error::GrantError, views};
use crate::{
    config::Agent,
    daemon::kernel_task::KernelCallError,
    error_chain,
    events::now_ms,
    grants::{ActiveGrant, Decision},
    kernel::KernelGrant,
    metrics::ROOT_APPROVER,
};

impl GrantService {
    /// Makes `decision` durable and shows it in `kya events`.
    pub(super) fn record(&mut self, decision: &Decision) -> Result<(), GrantError> {
        self.store.record(decision).map_err(GrantError::Record)?;
        if let Some(activity) = views::activity(decision) {
            self.events.push(activity);
        }
        if matches!(
            decision,
            Decision::Request { .. } | Decision::Approve { .. } | Decision::Deny { .. }
        ) {
            self.pending_changed();
        }
        self.publish(decision);
        Ok(())
    }

    /// Updates the grant metrics after `decision`.
    pub(super) fn publish(&self, decision: &Decision) {
        if let Decision::Approve { grant, .. } | Decision::Grant { grant } = decision {
            let approver = if grant.approver_uid == 0 {
                ROOT_APPROVER
            } else {
                grant.approver.as_str()
            };
            self.metrics.record_approval(&grant.agent, approver);
        }
        let state = self.store.state();
        self.metrics
            .set_pending_requests(state.pending.len() as u64);
        for agent in self.config.current().agents() {
            let active = state
                .grants
                .values()
                .filter(|grant| grant.agent == agent.name())
                .count();
            self.metrics.set_grants_active(agent.name(), active as u64);
        }
    }

    /// The agent called `name` in the config in force now.
    pub(super) fn agent(&self, name: &str) -> Option<Agent> {
        self.config.current().agent_by_name(name).cloned()
    }

    /// Puts `grant` in force in the kernel, with its end on the kernel's own clock.
    pub(super) async fn insert_in_kernel(&self, grant: &ActiveGrant) -> Result<(), GrantError> {
        let agent = self
            .agent(&grant.agent)
            .ok_or_else(|| GrantError::AgentGone(grant.agent.clone()))?
            .id()
            .get();
        let (files, peers) = grant.resource.kernel_keys(agent);
        let entry = KernelGrant {
            grant: Grant {
                id: grant.id,
                flags: if grant.once { flag::ONCE } else { 0 },
                expires_ns: boot_time_at(grant.expires_ms),
            },
            files,
            peers,
        };
        Ok(self.kernel.insert_grant(entry).await?)
    }

    /// Ends grant `id` in the kernel; see `Kernel::remove_grant` for `keep_opened`.
    pub(super) async fn remove_from_kernel(&self, id: u32, keep_opened: bool) {
        if let Err(error) = self.kernel.remove_grant(id, keep_opened).await {
            // The kernel still ends it at its expiry on its own.
            tracing::error!(grant = id, error = %error_chain(&error), "removing a grant from the kernel failed");
        }
    }

    /// Periodic work: end grants that expired, notice single-use grants the kernel spent
    /// (their event may have been lost), and save folded request counts.
    pub(super) async fn upkeep(&mut self) {
        self.expire_due().await;
        self.notice_spent_grants().await;
        if self.counts_changed {
            self.counts_changed = false;
            if let Err(error) = self.store.save() {
                tracing::error!(error = %error_chain(&error), "saving request counts failed");
            }
        }
    }

    pub(super) async fn expire_due(&mut self) {
        let now = now_ms();
        let due: Vec<ActiveGrant> = self
            .store
            .state()
            .grants
            .values()
            .filter(|grant| grant.expires_ms <= now)
            .cloned()
            .collect();
        for grant in due {
            let decision = Decision::Expire {
                grant: grant.id,
                agent: grant.agent.clone(),
                resource: grant.resource.clone(),
                uses: grant.uses,
            };
            if let Err(error) = self.record(&decision) {
                tracing::error!(grant = grant.id, error = %error, "cannot record an expiry");
                continue;
            }
            self.remove_from_kernel(grant.id, false).await;
        }
    }

    async fn notice_spent_grants(&mut self) {
        if !self.store.state().grants.values().any(|grant| grant.once) {
            return;
        }
        let unspent = match self.kernel.unspent_once_grants().await {
            Ok(unspent) => unspent,
            Err(KernelCallError::Gone) => return,
            Err(error) => {
                tracing::error!(error = %error_chain(&error), "cannot read single-use grants from the kernel");
                return;
            }
        };
        let missing: HashSet<u32> = self
            .store
            .state()
            .grants
            .values()
            .filter(|grant| grant.once && !unspent.contains(&grant.id))
            .map(|grant| grant.id)
            .collect();
        // The kernel's event of the use is normally still on its way: only a token missing at
        // two checks in a row is taken for a use whose event was lost.
        let lost: Vec<ActiveGrant> = missing
            .intersection(&self.spent_unreported)
            .filter_map(|id| self.store.state().grants.get(id).cloned())
            .collect();
        self.spent_unreported = missing;
        for grant in lost {
            self.record_lost_use(&grant).await;
        }
    }

    /// Records the use of a single-use grant the kernel spent without its event reaching the
    /// daemon, and clears the keys it left.
    pub(super) async fn record_lost_use(&mut self, grant: &ActiveGrant) {
        let decision = Decision::GrantUsed {
            grant: grant.id,
            agent: grant.agent.clone(),
            resource: grant.resource.clone(),
            pid: None,
            exe: None,
            operation: "unknown (its event was lost)".to_owned(),
        };
        if self.record(&decision).is_ok() {
            self.remove_from_kernel(grant.id, true).await;
        }
    }
}

/// The `CLOCK_BOOTTIME` nanosecond at which wall-clock millisecond `at_ms` arrives (now, if it
/// has passed). Boot time cannot be set, so a clock change after this never moves the end.
fn boot_time_at(at_ms: u64) -> u64 {
    let remaining_ns = at_ms.saturating_sub(now_ms()).saturating_mul(1_000_000);
    boot_time_now().saturating_add(remaining_ns)
}

fn boot_time_now() -> u64 {
    let now = clock_gettime(ClockId::CLOCK_BOOTTIME)
        .expect("CLOCK_BOOTTIME is always available on Linux");
    u64::try_from(now.tv_sec()).unwrap_or(0) * 1_000_000_000
        + u64::try_from(now.tv_nsec()).unwrap_or(0)
}
