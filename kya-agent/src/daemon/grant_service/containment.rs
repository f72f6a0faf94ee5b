//! Ghost agents: containing an agent whose owner's account is gone (its grants revoked, its
//! pending requests dropped, new requests refused), ending containment on a reload, and
//! revoking the grants of approvers whose own account is gone. The owner watch decides when;
//! this records it (audited, persisted in the grant state) and changes the kernel's grants.
use std::collections::{BTreeMap, BTreeSet};

use super::{GrantService, error::GrantError};
use crate::{
    accounts::{self, Account, Gone},
    events::now_ms,
    grants::{
        ActiveGrant, Decision,
        authority::Caller,
        state::{Actor, Containment},
    },
};

/// What the owner watch and the reload ask of the grant service.
#[derive(Debug)]
pub enum Internal {
    /// Contain `agent`, whose `owner` is gone for `reason`; the reply says whether it was
    /// not contained before.
    Contain {
        agent: String,
        owner: String,
        reason: Gone,
        reply: tokio::sync::oneshot::Sender<bool>,
    },
    /// End the containment of `agent`.
    Release {
        agent: String,
        why: String,
        reply: tokio::sync::oneshot::Sender<()>,
    },
    /// The contained agents.
    Contained {
        reply: tokio::sync::oneshot::Sender<BTreeMap<String, Containment>>,
    },
    /// The (non-root) approvers of the grants in force.
    Approvers {
        reply: tokio::sync::oneshot::Sender<BTreeSet<String>>,
    },
    /// Revoke every grant `approver` (not root) approved: their account is gone.
    RevokeApprover {
        approver: String,
        reason: Gone,
        reply: tokio::sync::oneshot::Sender<usize>,
    },
}

/// The daemon itself, as the actor of what it decides alone.
fn daemon() -> Actor {
    Actor {
        user: "kya-agent".to_owned(),
        uid: 0,
    }
}

impl GrantService {
    pub(super) async fn internal(&mut self, call: Internal) {
        match call {
            Internal::Contain {
                agent,
                owner,
                reason,
                reply,
            } => {
                let _ = reply.send(self.contain(&agent, owner, reason).await);
            }
            Internal::Release { agent, why, reply } => {
                if let Err(error) = self.record(&Decision::Release { agent, why }) {
                    tracing::error!(error = %error, "cannot record the end of a containment");
                }
                let _ = reply.send(());
            }
            Internal::Contained { reply } => {
                let _ = reply.send(self.store.state().contained.clone());
            }
            Internal::Approvers { reply } => {
                let approvers = self
                    .store
                    .state()
                    .grants
                    .values()
                    .filter(|grant| grant.approver_uid != 0)
                    .map(|grant| grant.approver.clone())
                    .collect();
                let _ = reply.send(approvers);
            }
            Internal::RevokeApprover {
                approver,
                reason,
                reply,
            } => {
                let why = format!("the account of approver {approver} {reason}");
                let doomed = self
                    .grants_where(|grant| grant.approver == approver && grant.approver_uid != 0);
                let _ = reply.send(self.revoke_all(doomed, &why).await);
            }
        }
    }

    /// Records the containment, then revokes the agent's grants and drops its pending
    /// requests. Already contained: nothing changes.
    async fn contain(&mut self, agent: &str, owner: String, reason: Gone) -> bool {
        if self.store.state().contained.contains_key(agent) {
            return false;
        }
        let pending: Vec<_> = self
            .store
            .state()
            .pending
            .values()
            .filter(|request| request.agent == agent)
            .cloned()
            .collect();
        let containment = Containment {
            owner,
            reason,
            since_ms: now_ms(),
            dropped: pending.iter().map(|request| request.id).collect(),
        };
        let why = containment.explain(agent);
        tracing::warn!(agent = %agent, owner = %containment.owner, reason = reason.label(), "owner gone: agent contained");
        let decision = Decision::Contain {
            agent: agent.to_owned(),
            containment,
        };
        self.record_or_apply(&decision);
        let doomed = self.grants_where(|grant| grant.agent == agent);
        self.revoke_all(doomed, &why).await;
        for request in pending {
            self.record_or_apply(&Decision::Deny {
                request: request.id,
                agent: request.agent,
                resource: request.resource,
                by: daemon(),
            });
        }
        true
    }

    /// Records what the daemon decided alone; when the audit trail or the snapshot cannot be
    /// written, the decision takes effect all the same (kept in memory, saved with the next
    /// snapshot) and the missing record is logged. A containment or a revocation that failed
    /// to write must not leave a ghost agent its allowlists, grants or requests: the kernel's
    /// policy and every refusal are read from this state. (A record that reached the trail but
    /// not the snapshot was applied already; applying these decisions again changes nothing.)
    fn record_or_apply(&mut self, decision: &Decision) {
        if let Err(error) = self.record(decision) {
            tracing::error!(error = %error, ?decision, "cannot record a decision of the daemon; in force without its audit record");
            self.store.update_quietly(|state| state.apply(decision));
        }
    }

    /// Revokes `doomed` as the daemon, for `why`; how many were revoked.
    async fn revoke_all(&mut self, doomed: Vec<ActiveGrant>, why: &str) -> usize {
        let mut revoked = 0;
        for grant in doomed {
            let decision = Decision::Revoke {
                grant: grant.id,
                agent: grant.agent.clone(),
                resource: grant.resource.clone(),
                by: daemon(),
                why: why.to_owned(),
            };
            self.record_or_apply(&decision);
            // Out of the kernel whatever the record says: a ghost's grant must not work.
            self.remove_from_kernel(grant.id, false).await;
            revoked += 1;
        }
        revoked
    }

    /// Refuses to decide for a contained agent, with the reason and the fix.
    pub(super) fn refuse_if_contained(&self, agent: &str) -> Result<(), GrantError> {
        match self.store.state().contained.get(agent) {
            Some(containment) => Err(GrantError::Contained(containment.explain(agent))),
            None => Ok(()),
        }
    }

    /// Refuses to approve request `id` if a containment dropped it, with the reason.
    pub(super) fn refuse_if_dropped(&self, id: u32) -> Result<(), GrantError> {
        match self
            .store
            .state()
            .contained
            .iter()
            .find(|(_, containment)| containment.dropped.contains(&id))
        {
            Some((agent, containment)) => Err(GrantError::Contained(containment.explain(agent))),
            None => Ok(()),
        }
    }

    /// Whether the agent is contained (denials of it become no requests).
    pub(super) fn is_contained(&self, agent: &str) -> bool {
        self.store.state().contained.contains_key(agent)
    }
}

/// Refuses an approval from a caller whose own account is gone (locked, expired, removed
/// while they still hold a shell). Root is always living.
pub(super) fn refuse_if_caller_gone(caller: &Caller) -> Result<(), GrantError> {
    if caller.uid == 0 {
        return Ok(());
    }
    match accounts::state_of(&caller.user) {
        Account::Gone(gone) => Err(GrantError::CallerGone {
            user: caller.user.clone(),
            gone,
        }),
        Account::Living | Account::Unknown => Ok(()),
    }
}
