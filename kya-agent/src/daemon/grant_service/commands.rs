//! Control requests about grants: list, approve, deny, grant ahead of time, revoke. Every
//! change is checked (who asks, what for, for how long) before anything is written, is
//! durable before it reaches the kernel, and is acknowledged only after both.
use std::{path::Path, time::Duration};

use super::{GrantService, views};
use crate::{
    control::protocol::{Request, Response},
    events::now_ms,
    files::protection,
    grants::{
        ActiveGrant, Decision, PendingRequest, Resource,
        authority::{Caller, may_decide},
        duration, parse_label,
        state::Actor,
    },
    procfs::kernel_dev,
};

/// Longest reason kept with a grant.
const MAX_REASON_CHARS: usize = 500;

fn error(message: impl Into<String>) -> Response {
    Response::Error {
        message: message.into(),
    }
}

/// How long a grant lasts and whether it is single-use, from `--once` and `--for`.
struct Terms {
    once: bool,
    lasts: Duration,
}

fn terms(once: bool, lasts: Option<&str>) -> Result<Terms, String> {
    let lasts = lasts.map(duration::parse).transpose()?;
    match (once, lasts) {
        (false, None) => Err(
            "say how long the grant lasts: --once (one use) or --for DURATION (such as 15m)"
                .to_owned(),
        ),
        (once, lasts) => Ok(Terms {
            once,
            lasts: lasts.unwrap_or(duration::ONCE_WINDOW),
        }),
    }
}

fn reason(reason: Option<String>) -> Result<Option<String>, String> {
    match reason {
        Some(text) if text.chars().count() > MAX_REASON_CHARS => Err(format!(
            "the reason is longer than {MAX_REASON_CHARS} characters; shorten it"
        )),
        Some(text) if text.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

impl GrantService {
    pub(super) async fn handle(&mut self, request: Request, caller: &Caller) -> Response {
        match request {
            Request::Pending {} => Response::Pending {
                requests: self
                    .store
                    .state()
                    .pending
                    .values()
                    .map(views::pending)
                    .collect(),
            },
            Request::Grants {} => Response::Grants {
                grants: self
                    .store
                    .state()
                    .grants
                    .values()
                    .map(views::grant)
                    .collect(),
            },
            Request::Approve {
                id,
                once,
                duration,
                reason,
            } => {
                self.approve(&id, once, duration.as_deref(), reason, caller)
                    .await
            }
            Request::Deny { id } => self.deny(&id, caller),
            Request::Grant {
                agent,
                file,
                connect,
                once,
                duration,
                reason,
            } => {
                self.grant_ahead(
                    &agent,
                    file,
                    connect,
                    once,
                    duration.as_deref(),
                    reason,
                    caller,
                )
                .await
            }
            Request::Revoke {
                grant,
                approver,
                agent,
            } => self.revoke(grant, approver, agent, caller).await,
            other => error(format!("not a grant request: {other:?}")),
        }
    }

    async fn approve(
        &mut self,
        label: &str,
        once: bool,
        lasts: Option<&str>,
        reason_text: Option<String>,
        caller: &Caller,
    ) -> Response {
        let (id, request) = match self.pending_request(label) {
            Ok(found) => found,
            Err(message) => return error(message),
        };
        let (terms, reason) = match (terms(once, lasts), reason(reason_text)) {
            (Ok(terms), Ok(reason)) => (terms, reason),
            (Err(message), _) | (_, Err(message)) => return error(message),
        };
        if let Err(message) = self.may_decide(caller, &request.agent) {
            return error(message);
        }
        let grant = self.new_grant(
            &request.agent,
            request.resource,
            &terms,
            reason,
            caller,
            Some(id),
        );
        self.put_in_force(Decision::Approve { request: id, grant })
            .await
    }

    fn deny(&mut self, label: &str, caller: &Caller) -> Response {
        let (id, request) = match self.pending_request(label) {
            Ok(found) => found,
            Err(message) => return error(message),
        };
        if let Err(message) = self.may_decide(caller, &request.agent) {
            return error(message);
        }
        let decision = Decision::Deny {
            request: id,
            agent: request.agent,
            resource: request.resource,
            by: actor(caller),
        };
        match self.record(&decision) {
            Ok(()) => Response::Denied {
                request: label.to_owned(),
            },
            Err(message) => error(message),
        }
    }

    #[expect(clippy::too_many_arguments, reason = "the fields of one request")]
    async fn grant_ahead(
        &mut self,
        agent: &str,
        file: Option<String>,
        connect: Option<String>,
        once: bool,
        lasts: Option<&str>,
        reason_text: Option<String>,
        caller: &Caller,
    ) -> Response {
        if self.agent(agent).is_none() {
            return error(self.unknown_agent(agent));
        }
        let (terms, reason) = match (terms(once, lasts), reason(reason_text)) {
            (Ok(terms), Ok(reason)) => (terms, reason),
            (Err(message), _) | (_, Err(message)) => return error(message),
        };
        if let Err(message) = self.may_decide(caller, agent) {
            return error(message);
        }
        let resource = match (file, connect) {
            (Some(path), None) => self.file_resource(agent, &path),
            (None, Some(peer)) => Resource::peer(&peer).await,
            _ => Err("name exactly one resource: --file PATH or --connect HOST:PORT".to_owned()),
        };
        let resource = match resource {
            Ok(resource) => resource,
            Err(message) => return error(message),
        };
        let grant = self.new_grant(agent, resource, &terms, reason, caller, None);
        self.put_in_force(Decision::Grant { grant }).await
    }

    async fn revoke(
        &mut self,
        grant: Option<String>,
        approver: Option<String>,
        agent: Option<String>,
        caller: &Caller,
    ) -> Response {
        let (doomed, why): (Vec<ActiveGrant>, String) = match (grant, approver, agent) {
            (Some(label), None, None) => {
                let id = match parse_label(&label, 'g') {
                    Ok(id) => id,
                    Err(message) => return error(message),
                };
                match self.store.state().grants.get(&id) {
                    Some(grant) => (vec![grant.clone()], format!("revoked {label}")),
                    None => {
                        return error(format!(
                            "no grant {label} in force; `kya grants` lists them"
                        ));
                    }
                }
            }
            (None, Some(user), None) => {
                if caller.uid != 0 && caller.user != user {
                    return error(format!(
                        "only root (or {user} themselves) may void every grant {user} approved"
                    ));
                }
                (
                    self.grants_where(|grant| grant.approver == user),
                    format!("every grant approved by {user} was voided"),
                )
            }
            (None, None, Some(name)) => {
                if self.agent(&name).is_none() {
                    return error(self.unknown_agent(&name));
                }
                (
                    self.grants_where(|grant| grant.agent == name),
                    format!("every grant of agent {name} was revoked"),
                )
            }
            _ => {
                return error(
                    "name exactly one of: a grant id (g3), --approver USER or --agent NAME",
                );
            }
        };
        for grant in &doomed {
            if let Err(message) = self.may_decide(caller, &grant.agent) {
                return error(format!("nothing was revoked: {message}"));
            }
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
            if let Err(message) = self.record(&decision) {
                return error(format!("revoked {revoked:?} before failing: {message}"));
            }
            self.remove_from_kernel(grant.id, false).await;
            revoked.push(crate::grants::grant_label(grant.id));
        }
        Response::Revoked { grants: revoked }
    }

    /// Records the grant (durable), then puts it in the kernel; if the kernel refuses it, the
    /// refusal is recorded as a revocation and the caller told.
    async fn put_in_force(&mut self, decision: Decision) -> Response {
        let grant = match &decision {
            Decision::Approve { grant, .. } | Decision::Grant { grant } => grant.clone(),
            _ => unreachable!("only approvals and grants are put in force"),
        };
        if let Err(message) = self.record(&decision) {
            return error(message);
        }
        if let Err(message) = self.insert_in_kernel(&grant).await {
            let undo = Decision::Revoke {
                grant: grant.id,
                agent: grant.agent.clone(),
                resource: grant.resource.clone(),
                by: Actor {
                    user: "kya-agent".to_owned(),
                    uid: 0,
                },
                why: format!("the kernel refused it: {message}"),
            };
            let _ = self.record(&undo);
            return error(format!(
                "the kernel refused the grant, so it was revoked: {message}"
            ));
        }
        tracing::info!(grant = grant.id, agent = %grant.agent, resource = %grant.resource, approver = %grant.approver, "grant in force");
        Response::Granted {
            grant: views::grant(&grant),
        }
    }

    fn new_grant(
        &self,
        agent: &str,
        resource: Resource,
        terms: &Terms,
        reason: Option<String>,
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
            reason,
            request,
            created_ms: now,
            expires_ms: now.saturating_add(lasts_ms),
            once: terms.once,
            uses: 0,
        }
    }

    /// The pending request a human named (`r12`), with its id.
    fn pending_request(&self, label: &str) -> Result<(u32, PendingRequest), String> {
        let id = parse_label(label, 'r')?;
        let request = self
            .store
            .state()
            .pending
            .get(&id)
            .cloned()
            .ok_or_else(|| {
                format!("no pending request {label}; `kya pending` lists the open ones")
            })?;
        Ok((id, request))
    }

    fn may_decide(&self, caller: &Caller, agent: &str) -> Result<(), String> {
        let Some(agent) = self.agent(agent) else {
            return Err(self.unknown_agent(agent));
        };
        may_decide(caller, &agent, &self.config.current())
    }

    fn unknown_agent(&self, name: &str) -> String {
        let config = self.config.current();
        let known: Vec<&str> = config
            .agents()
            .iter()
            .map(crate::config::Agent::name)
            .collect();
        format!(
            "unknown agent `{name}`; agents in {}: {}",
            config.origin().display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )
    }

    fn grants_where(&self, keep: impl Fn(&ActiveGrant) -> bool) -> Vec<ActiveGrant> {
        self.store
            .state()
            .grants
            .values()
            .filter(|grant| keep(grant))
            .cloned()
            .collect()
    }

    /// The file at `path` as a grantable resource: it must exist and be protected from the
    /// agent (a file the agent may read already needs no grant).
    fn file_resource(&self, agent: &str, path: &str) -> Result<Resource, String> {
        use std::os::unix::fs::MetadataExt as _;
        let path = Path::new(path);
        if !path.is_absolute() {
            return Err(format!(
                "file `{}` is not an absolute path; the daemon cannot know your directory",
                path.display()
            ));
        }
        let meta = std::fs::metadata(path)
            .map_err(|error| format!("file `{}`: {error}", path.display()))?;
        if !meta.is_file() {
            return Err(format!(
                "`{}` is not a regular file; grants cover single files",
                path.display()
            ));
        }
        let agent_id = self
            .agent(agent)
            .map(|agent| agent.id().get())
            .unwrap_or_default();
        let tables = self.file_tables.read().expect("file tables lock");
        match protection::is_protected(&tables, agent_id, path) {
            Ok(true) => Ok(Resource::File {
                dev: kernel_dev(meta.dev()),
                ino: meta.ino(),
                path: path.display().to_string(),
            }),
            Ok(false) => Err(format!(
                "`{}` is not protected from agent `{agent}`; it needs no grant",
                path.display()
            )),
            Err(error) => Err(format!("file `{}`: {error}", path.display())),
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
