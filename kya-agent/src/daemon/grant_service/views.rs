//! How requests, grants and decisions look on the control socket and in `kya events`.
use std::time::Duration;

use crate::{
    control::protocol::{DenialRecord, GrantView, PendingView},
    events::now_ms,
    grants::{ActiveGrant, Decision, PendingRequest, duration, grant_label, request_label},
    text::AgentText,
};

pub fn pending(request: &PendingRequest) -> PendingView {
    PendingView {
        id: request_label(request.id),
        agent: request.agent.clone(),
        kind: request.resource.kind().to_owned(),
        resource: request.resource.text(),
        operation: request.operation.clone(),
        pid: request.pid,
        exe: request.exe.clone(),
        first_ms: request.first_ms,
        last_ms: request.last_ms,
        count: request.count,
        why: request.why.clone(),
    }
}

pub fn grant(grant: &ActiveGrant) -> GrantView {
    GrantView {
        id: grant_label(grant.id),
        agent: grant.agent.clone(),
        kind: grant.resource.kind().to_owned(),
        resource: grant.resource.text(),
        approver: grant.approver.clone(),
        approver_uid: grant.approver_uid,
        reason: grant.reason.clone(),
        request: grant.request.map(request_label),
        created_ms: grant.created_ms,
        expires_ms: grant.expires_ms,
        uses_left: grant.once.then_some(1),
        uses: grant.uses,
        approval: grant
            .proof
            .as_ref()
            .map(|proof| proof.method.name().to_owned()),
        key: grant.proof.as_ref().and_then(|proof| proof.key.clone()),
    }
}

/// The `kya events` line for a human's decision or a grant's end; `None` for what is shown
/// already (requests come from denials, and grant uses from the kernel's own events).
pub fn activity(decision: &Decision) -> Option<DenialRecord> {
    // Each `why` quotes a resource (and a reason) raw: the whole is escaped once when shown.
    let (kind, agent, grant, why) = match decision {
        Decision::Request { .. } | Decision::GrantUsed { .. } => return None,
        Decision::Approve { request, grant } => (
            "approve",
            &grant.agent,
            Some(grant.id),
            sentence(&[
                format!(
                    "{} approved {} for ",
                    grant.approver,
                    request_label(*request)
                )
                .as_ref(),
                grant.resource.text().as_ref(),
                b" (",
                terms(grant).as_ref(),
                b")",
            ]),
        ),
        Decision::Grant { grant } => (
            "grant",
            &grant.agent,
            Some(grant.id),
            sentence(&[
                format!("{} granted ", grant.approver).as_ref(),
                grant.resource.text().as_ref(),
                b" (",
                terms(grant).as_ref(),
                b")",
            ]),
        ),
        Decision::Deny {
            request,
            agent,
            resource,
            by,
        } => (
            "deny",
            agent,
            None,
            sentence(&[
                format!("{} refused {} for ", by.user, request_label(*request)).as_ref(),
                resource.text().as_ref(),
            ]),
        ),
        Decision::Expire {
            grant,
            agent,
            resource,
            uses,
        } => (
            "expire",
            agent,
            Some(*grant),
            sentence(&[
                b"grant for ",
                resource.text().as_ref(),
                format!(" ended after {uses} use(s)").as_ref(),
            ]),
        ),
        Decision::Revoke {
            grant,
            agent,
            resource,
            by,
            why,
        } => (
            "revoke",
            agent,
            Some(*grant),
            sentence(&[
                format!("{} revoked the grant for ", by.user).as_ref(),
                resource.text().as_ref(),
                format!(": {why}").as_ref(),
            ]),
        ),
        Decision::Contain { agent, containment } => (
            "contain",
            agent,
            None,
            AgentText::from(containment.explain(agent)),
        ),
        Decision::Release { agent, why } => (
            "release",
            agent,
            None,
            AgentText::from(format!("agent {agent} is no longer contained: {why}")),
        ),
    };
    Some(activity_record(kind, agent, grant, why))
}

/// A record of grant activity: no process, no object but what `why` says.
fn activity_record(kind: &str, agent: &str, grant: Option<u32>, why: AgentText) -> DenialRecord {
    DenialRecord {
        seq: 0,
        time_ms: now_ms(),
        kind: kind.to_owned(),
        agent: agent.to_owned(),
        pid: 0,
        tid: 0,
        exe: None,
        path: None,
        name: None,
        dev: None,
        ino: None,
        target_pid: None,
        peer: None,
        protocol: None,
        host: None,
        socket: None,
        server_pid: None,
        server_exe: None,
        why,
        grant: grant.map(grant_label),
    }
}

/// The daemon's words and an agent's text, joined raw.
fn sentence(parts: &[&[u8]]) -> AgentText {
    AgentText::from_bytes(parts.concat())
}

/// `once`, `for 15m`, with the approver's reason if they gave one.
fn terms(grant: &ActiveGrant) -> AgentText {
    let mut terms = if grant.once {
        AgentText::from("once")
    } else {
        let lasts = Duration::from_secs(grant.expires_ms.saturating_sub(grant.created_ms) / 1_000);
        AgentText::from(format!("for {}", duration::show(lasts)))
    };
    if let Some(reason) = &grant.reason {
        terms.push(", reason: ");
        terms.push(reason);
    }
    terms
}
