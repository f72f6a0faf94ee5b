//! What is pending and what is granted, and how each recorded decision changes that. Applying
//! the same decisions in the same order always gives the same state: the daemon replays the
//! audit trail through `State::apply` to recover anything its last snapshot missed.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Resource, ResourceKey};
use crate::{accounts::Gone, approvals::ProofRecord, audit::AuditHead, text::AgentText};

/// An agent was refused something a human could grant; repeats fold into one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingRequest {
    pub id: u32,
    pub agent: String,
    pub resource: Resource,
    /// The process that asked most recently, and its executable.
    pub pid: u32,
    pub exe: Option<AgentText>,
    /// What it tried (`file-open`, `connect`, ...), most recently.
    pub operation: String,
    pub first_ms: u64,
    pub last_ms: u64,
    pub count: u64,
    /// Why it was refused (the protection's reason, as `kya events` shows it), most recently.
    /// Absent in requests recorded before it was kept.
    /// It may quote an agent's file name, so it is kept and shown escaped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<AgentText>,
}

/// A grant in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActiveGrant {
    pub id: u32,
    pub agent: String,
    pub resource: Resource,
    /// The human who approved it, as the kernel identified them on the control socket.
    pub approver: String,
    pub approver_uid: u32,
    pub reason: Option<AgentText>,
    /// The request it answered, if it was not granted ahead of time.
    pub request: Option<u32>,
    pub created_ms: u64,
    /// Wall-clock end (the kernel enforces the same moment on its own clock).
    pub expires_ms: u64,
    /// Single use: the kernel lets exactly one operation through.
    pub once: bool,
    /// Uses the daemon has seen reported.
    pub uses: u64,
    /// How the approver proved it was them (absent in grants recorded before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<ProofRecord>,
}

/// An agent contained because its owner's account is gone: its grants were revoked, its
/// allowlists are suspended and requests for it are refused until a reload finds the owner
/// living again (or a new, living owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Containment {
    pub owner: String,
    pub reason: Gone,
    pub since_ms: u64,
    /// The pending requests dropped when it began: approving one is refused with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<u32>,
}

impl Containment {
    /// Why the agent is contained, with the fix: what refusals and `kya status` say.
    #[must_use]
    pub fn explain(&self, agent: &str) -> String {
        format!(
            "agent {agent} is contained: its owner {} {} (contained since {}); restore the \
             account, or set a new owner in the config, then run `kya reload`",
            self.owner,
            self.reason,
            crate::dates::utc_time(self.since_ms),
        )
    }
}

/// Who made a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub user: String,
    pub uid: u32,
}

/// Every decision that matters, as it is written to the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
pub enum Decision {
    /// An agent was refused something grantable, for the first time since it was last decided.
    Request { request: PendingRequest },
    /// A human approved a pending request.
    Approve { request: u32, grant: ActiveGrant },
    /// A human granted ahead of time.
    Grant { grant: ActiveGrant },
    /// A human refused a pending request.
    Deny {
        request: u32,
        agent: String,
        resource: Resource,
        by: Actor,
    },
    /// The kernel let an operation through under a grant (the first use of a timed grant, the
    /// only use of a single-use one).
    GrantUsed {
        grant: u32,
        agent: String,
        resource: Resource,
        pid: Option<u32>,
        exe: Option<AgentText>,
        operation: String,
    },
    /// A grant reached its end.
    Expire {
        grant: u32,
        agent: String,
        resource: Resource,
        uses: u64,
    },
    /// A human ended a grant early.
    Revoke {
        grant: u32,
        agent: String,
        resource: Resource,
        by: Actor,
        why: String,
    },
    /// The daemon found the agent's owner gone and contained the agent.
    Contain {
        agent: String,
        #[serde(flatten)]
        containment: Containment,
    },
    /// A reload found the owner of a contained agent living again (or the agent gone from the
    /// config): the containment ended.
    Release { agent: String, why: String },
}

/// Everything pending and granted, plus the audit position it reflects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub next_request: u32,
    pub next_grant: u32,
    pub pending: BTreeMap<u32, PendingRequest>,
    pub grants: BTreeMap<u32, ActiveGrant>,
    /// Contained agents by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub contained: BTreeMap<String, Containment>,
    /// The last audit record this state includes; `kya audit verify` checks the trail still
    /// holds it (a trail cut short is caught).
    pub audit_head: AuditHead,
}

impl Default for State {
    fn default() -> Self {
        Self {
            next_request: 1,
            next_grant: 1,
            pending: BTreeMap::new(),
            grants: BTreeMap::new(),
            contained: BTreeMap::new(),
            audit_head: AuditHead::empty(),
        }
    }
}

impl State {
    /// The next request id to hand out.
    #[must_use]
    pub fn new_request_id(&self) -> u32 {
        self.next_request.max(1)
    }

    /// The next grant id to hand out.
    #[must_use]
    pub fn new_grant_id(&self) -> u32 {
        self.next_grant.max(1)
    }

    /// The pending request of `agent` for the same resource, if any.
    #[must_use]
    pub fn pending_for(&self, agent: &str, key: &ResourceKey) -> Option<u32> {
        self.pending
            .values()
            .find(|request| request.agent == agent && request.resource.key() == *key)
            .map(|request| request.id)
    }

    /// Changes the state as `decision` says. Decisions about ids that are gone change nothing
    /// (a replay may meet them twice).
    pub fn apply(&mut self, decision: &Decision) {
        match decision {
            Decision::Request { request } => {
                self.next_request = self.next_request.max(request.id + 1);
                self.pending.insert(request.id, request.clone());
            }
            Decision::Approve { request, grant } => {
                self.pending.remove(request);
                self.add_grant(grant);
            }
            Decision::Grant { grant } => self.add_grant(grant),
            Decision::Deny { request, .. } => {
                self.pending.remove(request);
            }
            Decision::GrantUsed { grant, .. } => {
                if let Some(active) = self.grants.get_mut(grant) {
                    active.uses += 1;
                    if active.once {
                        self.grants.remove(grant);
                    }
                }
            }
            Decision::Expire { grant, .. } | Decision::Revoke { grant, .. } => {
                self.grants.remove(grant);
            }
            Decision::Contain { agent, containment } => {
                self.contained.insert(agent.clone(), containment.clone());
            }
            Decision::Release { agent, .. } => {
                self.contained.remove(agent);
            }
        }
    }

    fn add_grant(&mut self, grant: &ActiveGrant) {
        self.next_grant = self.next_grant.max(grant.id + 1);
        self.grants.insert(grant.id, grant.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Resource {
        Resource::File {
            dev: 1,
            ino: 2,
            path: "/root/.aws/credentials".into(),
            via: None,
        }
    }

    fn request(id: u32) -> PendingRequest {
        PendingRequest {
            id,
            agent: "coder".into(),
            resource: file(),
            pid: 10,
            exe: None,
            operation: "file-open".into(),
            first_ms: 1,
            last_ms: 1,
            count: 1,
            why: None,
        }
    }

    #[test]
    fn requests_recorded_before_their_reason_was_kept_still_read() {
        // Without a reason a request is written as before the field existed, and reads back.
        let mut text = serde_json::to_value(request(3)).unwrap();
        assert!(text.get("why").is_none(), "no reason, no field: {text}");
        let read: PendingRequest = serde_json::from_value(text.clone()).unwrap();
        assert_eq!(read, request(3));
        text["why"] = "credential file".into();
        let read: PendingRequest = serde_json::from_value(text).unwrap();
        assert_eq!(read.why, Some("credential file".into()));
        // A reason quoting an agent's name is written escaped and reads back to its bytes.
        let mut hostile = request(4);
        hostile.why = Some(AgentText::from_bytes(b"inside /srv (\x1b[2J\n)".as_slice()));
        let text = serde_json::to_value(&hostile).unwrap();
        assert_eq!(text["why"], r"inside /srv (\x1b[2J\n)");
        let read: PendingRequest = serde_json::from_value(text).unwrap();
        assert_eq!(read, hostile);
    }

    fn grant(id: u32, once: bool) -> ActiveGrant {
        ActiveGrant {
            id,
            agent: "coder".into(),
            resource: file(),
            approver: "alice".into(),
            approver_uid: 1000,
            reason: Some("deploy".into()),
            request: Some(1),
            created_ms: 5,
            expires_ms: 100,
            once,
            uses: 0,
            proof: None,
        }
    }

    #[test]
    fn approval_turns_a_request_into_a_grant() {
        let mut state = State::default();
        state.apply(&Decision::Request {
            request: request(1),
        });
        assert_eq!(state.pending_for("coder", &file().key()), Some(1));
        assert_eq!(state.new_request_id(), 2);
        state.apply(&Decision::Approve {
            request: 1,
            grant: grant(1, true),
        });
        assert!(state.pending.is_empty());
        assert_eq!(state.new_grant_id(), 2);
        // A single-use grant is gone after its use; replaying the use again changes nothing.
        let used = Decision::GrantUsed {
            grant: 1,
            agent: "coder".into(),
            resource: file(),
            pid: Some(10),
            exe: None,
            operation: "file-open".into(),
        };
        state.apply(&used);
        assert!(state.grants.is_empty());
        state.apply(&used);
        assert!(state.grants.is_empty());
    }

    #[test]
    fn timed_grants_count_uses_until_they_end() {
        let mut state = State::default();
        state.apply(&Decision::Grant {
            grant: grant(3, false),
        });
        state.apply(&Decision::GrantUsed {
            grant: 3,
            agent: "coder".into(),
            resource: file(),
            pid: None,
            exe: None,
            operation: "file-open".into(),
        });
        assert_eq!(state.grants[&3].uses, 1);
        state.apply(&Decision::Expire {
            grant: 3,
            agent: "coder".into(),
            resource: file(),
            uses: 1,
        });
        assert!(state.grants.is_empty());
        assert_eq!(state.new_grant_id(), 4);
    }

    #[test]
    fn decisions_have_a_stable_wire_form() {
        let text = serde_json::to_string(&Decision::Deny {
            request: 4,
            agent: "coder".into(),
            resource: file(),
            by: Actor {
                user: "bob".into(),
                uid: 1002,
            },
        })
        .unwrap();
        assert!(
            text.starts_with(r#"{"event":"deny","request":4,"#),
            "{text}"
        );
        let back: Decision = serde_json::from_str(&text).unwrap();
        assert!(matches!(back, Decision::Deny { request: 4, .. }));
    }
}
