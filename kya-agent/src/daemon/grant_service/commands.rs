//! Control requests about grants: list, approve, deny, grant ahead of time, revoke. Every
//! change is checked (who asks, what for, for how long) before anything is written, is
//! durable before it reaches the kernel, and is acknowledged only after both.
use std::{path::Path, time::Duration};

use super::{GrantService, error::GrantError, views};
use crate::{
    approvals::{ProofRecord, challenge::Subject},
    control::protocol::{Proof, Request, Response},
    events::now_ms,
    files::protection,
    grants::{
        ActiveGrant, Decision, PendingRequest, Resource,
        authority::{Caller, may_decide},
        duration, parse_label,
        state::Actor,
    },
    identity::identity_of,
    text::AgentText,
};

/// Longest reason kept with a grant.
const MAX_REASON_CHARS: usize = 500;

/// The resource a grant ahead of time names: exactly one of them is `Some`.
struct Asked {
    file: Option<String>,
    connect: Option<String>,
    unix: Option<String>,
}

/// What a human asked for besides the resource: `--once`, `--for`, `--reason` and the proof.
struct How {
    once: bool,
    lasts: Option<String>,
    reason: Option<String>,
    proof: Option<Proof>,
}

/// What a challenge and its signature cover, from the daemon's own records.
fn subject(agent: &str, request: Option<u32>, resource: &Resource, terms: &Terms) -> Subject {
    Subject {
        agent: agent.to_owned(),
        request: request.map(crate::grants::request_label),
        resource: resource.text().to_string(),
        once: terms.once,
        lasts: terms.lasts,
    }
}

/// How long a grant lasts and whether it is single-use, from `--once` and `--for`.
struct Terms {
    once: bool,
    lasts: Duration,
}

fn terms(once: bool, lasts: Option<&str>) -> Result<Terms, GrantError> {
    let lasts = lasts.map(duration::parse).transpose()?;
    match (once, lasts) {
        (false, None) => Err(GrantError::NoTerms),
        (once, lasts) => Ok(Terms {
            once,
            lasts: lasts.unwrap_or(duration::ONCE_WINDOW),
        }),
    }
}

fn reason(reason: Option<String>) -> Result<Option<String>, GrantError> {
    match reason {
        Some(text) if text.chars().count() > MAX_REASON_CHARS => Err(GrantError::ReasonTooLong {
            max: MAX_REASON_CHARS,
        }),
        Some(text) if text.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

impl GrantService {
    pub(super) async fn handle(&mut self, request: Request, caller: &Caller) -> Response {
        let answer = match request {
            Request::Pending {} => Ok(Response::Pending {
                requests: self
                    .store
                    .state()
                    .pending
                    .values()
                    .map(views::pending)
                    .collect(),
            }),
            Request::Grants {} => Ok(Response::Grants {
                grants: self
                    .store
                    .state()
                    .grants
                    .values()
                    .map(views::grant)
                    .collect(),
            }),
            Request::Approve {
                id,
                once,
                duration,
                reason,
                proof,
            } => {
                let how = How {
                    once,
                    lasts: duration,
                    reason,
                    proof,
                };
                self.approve(&id, how, caller).await
            }
            Request::Deny { id } => self.deny(&id, caller),
            Request::Grant {
                agent,
                file,
                connect,
                unix,
                once,
                duration,
                reason,
                proof,
            } => {
                let asked = Asked {
                    file,
                    connect,
                    unix,
                };
                let how = How {
                    once,
                    lasts: duration,
                    reason,
                    proof,
                };
                self.grant_ahead(&agent, asked, how, caller).await
            }
            Request::Challenge {
                approve,
                agent,
                file,
                connect,
                unix,
                once,
                duration,
            } => {
                let asked = Asked {
                    file,
                    connect,
                    unix,
                };
                self.challenge(approve, agent, asked, once, duration.as_deref(), caller)
                    .await
            }
            Request::TotpEnroll { user } => self.totp_enroll(&user, caller),
            Request::TotpRemove { user } => self.totp_remove(&user, caller),
            Request::Revoke {
                grant,
                approver,
                agent,
            } => self.revoke(grant, approver, agent, caller).await,
            other => {
                return Response::Error {
                    message: format!("not a grant request: {other:?}"),
                };
            }
        };
        answer.unwrap_or_else(|error| Response::Error {
            message: error.to_string(),
        })
    }

    async fn approve(
        &mut self,
        label: &str,
        how: How,
        caller: &Caller,
    ) -> Result<Response, GrantError> {
        let (id, request) = self.pending_request(label)?;
        let terms = terms(how.once, how.lasts.as_deref())?;
        let reason = reason(how.reason)?;
        self.may_decide(caller, &request.agent)?;
        self.refuse_if_contained(&request.agent)?;
        super::containment::refuse_if_caller_gone(caller)?;
        let subject = subject(&request.agent, Some(id), &request.resource, &terms);
        let proof = self.prove(&subject, how.proof, caller)?;
        let grant = self.new_grant(
            &request.agent,
            request.resource,
            &terms,
            (reason, proof),
            caller,
            Some(id),
        );
        self.put_in_force(Decision::Approve { request: id, grant })
            .await
    }

    /// `kya approve --challenge` / `kya grant --challenge` (and the first step of signing):
    /// the text for exactly this decision, with a fresh nonce.
    async fn challenge(
        &mut self,
        approve: Option<String>,
        agent: Option<String>,
        asked: Asked,
        once: bool,
        lasts: Option<&str>,
        caller: &Caller,
    ) -> Result<Response, GrantError> {
        let terms = terms(once, lasts)?;
        super::containment::refuse_if_caller_gone(caller)?;
        let subject = match (approve, agent) {
            (Some(label), None) => {
                let (id, request) = self.pending_request(&label)?;
                self.may_decide(caller, &request.agent)?;
                self.refuse_if_contained(&request.agent)?;
                subject(&request.agent, Some(id), &request.resource, &terms)
            }
            (None, Some(agent)) => {
                if self.agent(&agent).is_none() {
                    return Err(self.unknown_agent(&agent));
                }
                self.may_decide(caller, &agent)?;
                self.refuse_if_contained(&agent)?;
                let resource = self.asked_resource(&agent, asked).await?;
                subject(&agent, None, &resource, &terms)
            }
            _ => return Err(GrantError::ChallengeWhat),
        };
        self.issue_challenge(&subject, caller)
    }

    fn deny(&mut self, label: &str, caller: &Caller) -> Result<Response, GrantError> {
        let (id, request) = self.pending_request(label)?;
        self.may_decide(caller, &request.agent)?;
        self.record(&Decision::Deny {
            request: id,
            agent: request.agent,
            resource: request.resource,
            by: actor(caller),
        })?;
        Ok(Response::Denied {
            request: label.to_owned(),
        })
    }

    async fn grant_ahead(
        &mut self,
        agent: &str,
        asked: Asked,
        how: How,
        caller: &Caller,
    ) -> Result<Response, GrantError> {
        if self.agent(agent).is_none() {
            return Err(self.unknown_agent(agent));
        }
        let terms = terms(how.once, how.lasts.as_deref())?;
        let reason = reason(how.reason)?;
        self.may_decide(caller, agent)?;
        self.refuse_if_contained(agent)?;
        super::containment::refuse_if_caller_gone(caller)?;
        let resource = self.asked_resource(agent, asked).await?;
        let subject = subject(agent, None, &resource, &terms);
        let proof = self.prove(&subject, how.proof, caller)?;
        let grant = self.new_grant(agent, resource, &terms, (reason, proof), caller, None);
        self.put_in_force(Decision::Grant { grant }).await
    }

    /// The one resource a grant ahead of time names, resolved as the grant will hold it.
    async fn asked_resource(&self, agent: &str, asked: Asked) -> Result<Resource, GrantError> {
        match (asked.file, asked.connect, asked.unix) {
            (Some(path), None, None) => self.file_resource(agent, &path),
            (None, Some(peer), None) => Resource::peer(&peer).await.map_err(GrantError::Peer),
            (None, None, Some(socket)) => Resource::unix(&socket).map_err(GrantError::Unix),
            _ => Err(GrantError::OneResource),
        }
    }

    async fn revoke(
        &mut self,
        grant: Option<String>,
        approver: Option<String>,
        agent: Option<String>,
        caller: &Caller,
    ) -> Result<Response, GrantError> {
        let (doomed, why) = self.to_revoke(grant, approver, agent, caller)?;
        for grant in &doomed {
            self.may_decide(caller, &grant.agent)
                .map_err(|error| GrantError::NothingRevoked(Box::new(error)))?;
        }
        let mut revoked = Vec::new();
        for grant in doomed {
            let decision = Decision::Revoke {
                grant: grant.id,
                agent: grant.agent.clone(),
                resource: grant.resource.clone(),
                by: actor(caller),
                why: why.clone(),
            };
            if let Err(error) = self.record(&decision) {
                return Err(GrantError::PartlyRevoked {
                    revoked,
                    source: Box::new(error),
                });
            }
            self.remove_from_kernel(grant.id, false).await;
            revoked.push(crate::grants::grant_label(grant.id));
        }
        Ok(Response::Revoked { grants: revoked })
    }

    /// The grants a revocation names (one grant, an approver's or an agent's), and why they
    /// end.
    fn to_revoke(
        &self,
        grant: Option<String>,
        approver: Option<String>,
        agent: Option<String>,
        caller: &Caller,
    ) -> Result<(Vec<ActiveGrant>, String), GrantError> {
        match (grant, approver, agent) {
            (Some(label), None, None) => {
                let id = parse_label(&label, 'g')?;
                let grant = self
                    .store
                    .state()
                    .grants
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| GrantError::NoGrant(label.clone()))?;
                Ok((vec![grant], format!("revoked {label}")))
            }
            (None, Some(user), None) => {
                if caller.uid != 0 && caller.user != user {
                    return Err(GrantError::NotTheirApprovals(user));
                }
                Ok((
                    self.grants_where(|grant| grant.approver == user),
                    format!("every grant approved by {user} was voided"),
                ))
            }
            (None, None, Some(name)) => {
                if self.agent(&name).is_none() {
                    return Err(self.unknown_agent(&name));
                }
                Ok((
                    self.grants_where(|grant| grant.agent == name),
                    format!("every grant of agent {name} was revoked"),
                ))
            }
            _ => Err(GrantError::RevokeWhat),
        }
    }

    /// Records the grant (durable), then puts it in the kernel; if the kernel refuses it, the
    /// refusal is recorded as a revocation and the caller told.
    async fn put_in_force(&mut self, decision: Decision) -> Result<Response, GrantError> {
        let grant = match &decision {
            Decision::Approve { grant, .. } | Decision::Grant { grant } => grant.clone(),
            _ => unreachable!("only approvals and grants are put in force"),
        };
        self.record(&decision)?;
        if let Err(error) = self.insert_in_kernel(&grant).await {
            let undo = Decision::Revoke {
                grant: grant.id,
                agent: grant.agent.clone(),
                resource: grant.resource.clone(),
                by: Actor {
                    user: "kya-agent".to_owned(),
                    uid: 0,
                },
                why: format!("the kernel refused it: {error}"),
            };
            let _ = self.record(&undo);
            return Err(GrantError::KernelRefused(Box::new(error)));
        }
        tracing::info!(grant = grant.id, agent = %grant.agent, resource = %grant.resource, approver = %grant.approver, "grant in force");
        Ok(Response::Granted {
            grant: views::grant(&grant),
        })
    }

    fn new_grant(
        &self,
        agent: &str,
        resource: Resource,
        terms: &Terms,
        (reason, proof): (Option<String>, ProofRecord),
        caller: &Caller,
        request: Option<u32>,
    ) -> ActiveGrant {
        let now = now_ms();
        let lasts_ms = u64::try_from(terms.lasts.as_millis()).unwrap_or(u64::MAX);
        ActiveGrant {
            id: self.store.state().new_grant_id(),
            agent: agent.to_owned(),
            resource,
            approver: caller.user.clone(),
            approver_uid: caller.uid,
            reason: reason.map(AgentText::from),
            request,
            created_ms: now,
            expires_ms: now.saturating_add(lasts_ms),
            once: terms.once,
            uses: 0,
            proof: Some(proof),
        }
    }

    /// The pending request a human named (`r12`), with its id.
    fn pending_request(&self, label: &str) -> Result<(u32, PendingRequest), GrantError> {
        let id = parse_label(label, 'r')?;
        self.refuse_if_dropped(id)?;
        let request = self
            .store
            .state()
            .pending
            .get(&id)
            .cloned()
            .ok_or_else(|| GrantError::NoPendingRequest(label.to_owned()))?;
        Ok((id, request))
    }

    fn may_decide(&self, caller: &Caller, agent: &str) -> Result<(), GrantError> {
        let Some(agent) = self.agent(agent) else {
            return Err(self.unknown_agent(agent));
        };
        Ok(may_decide(caller, &agent, &self.config.current())?)
    }

    fn unknown_agent(&self, name: &str) -> GrantError {
        let config = self.config.current();
        GrantError::UnknownAgent {
            name: name.to_owned(),
            config: config.origin().to_owned(),
            known: config
                .agents()
                .iter()
                .map(|agent| agent.name().to_owned())
                .collect(),
        }
    }

    pub(super) fn grants_where(&self, keep: impl Fn(&ActiveGrant) -> bool) -> Vec<ActiveGrant> {
        self.store
            .state()
            .grants
            .values()
            .filter(|grant| keep(grant))
            .cloned()
            .collect()
    }

    /// The file at `path` as a grantable resource: it must exist and be protected from the
    /// agent (a file the agent may read already needs no grant), or be an execution foothold
    /// it may not change; and `path` must be the object's own name (see `ResolvesElsewhere`
    /// and `AnotherName`).
    fn file_resource(&self, agent: &str, path: &str) -> Result<Resource, GrantError> {
        let path = Path::new(path);
        if !path.is_absolute() {
            return Err(GrantError::RelativePath(path.to_owned()));
        }
        let unreadable = |source| GrantError::File {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(unreadable)?;
        // A grant covers a file object whatever its name. What the human typed must be that
        // object's own path, so what they see (here, in `kya grants`, in the audit trail) is
        // what the kernel lets through: no symlink or `..` on the way...
        let real = std::fs::canonicalize(path).map_err(unreadable)?;
        if real != path {
            return Err(GrantError::ResolvesElsewhere {
                typed: path.to_owned(),
                real,
                agent: agent.to_owned(),
            });
        }
        if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) {
            return Err(GrantError::SocketNotFile(path.to_owned()));
        }
        if !meta.is_file() {
            return Err(GrantError::NotAFile(path.to_owned()));
        }
        let agent_id = self
            .agent(agent)
            .map(|agent| agent.id().get())
            .unwrap_or_default();
        let tables = self.file_tables.read().expect("file tables lock");
        // A credential, or an execution foothold (a grant lets one write-open through).
        if protection::is_protected(&tables, agent_id, path).map_err(unreadable)?
            || protection::is_foothold(&tables, agent_id, path).map_err(unreadable)?
        {
            let key = identity_of(path).map_err(|error| unreadable(error.into()))?;
            // ... and not another name (a hard link, a mount elsewhere) of a protected object.
            if let Some(object) =
                protection::another_name_of(&tables, agent_id, key.dev, key.ino, path)
            {
                return Err(GrantError::AnotherName {
                    typed: path.to_owned(),
                    object: object.path.clone(),
                    tree: object.tree,
                    agent: agent.to_owned(),
                });
            }
            Ok(Resource::File {
                dev: key.dev,
                ino: key.ino,
                path: AgentText::from(path),
                via: None,
            })
        } else {
            Err(GrantError::NotProtected {
                path: path.to_owned(),
                agent: agent.to_owned(),
            })
        }
    }
}

fn actor(caller: &Caller) -> Actor {
    Actor {
        user: caller.user.clone(),
        uid: caller.uid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_need_once_or_a_duration() {
        assert!(terms(false, None).is_err());
        assert!(terms(true, None).unwrap().once);
        assert_eq!(
            terms(false, Some("5m")).unwrap().lasts,
            Duration::from_mins(5)
        );
        assert!(terms(false, Some("0s")).is_err());
        assert!(reason(Some("x".repeat(501))).is_err());
    }
}
