//! How requests, grants and decisions look on the control socket and in `kya events`.
use std::time::Duration;

use crate::{
    control::protocol::{DenialRecord, GrantView, PendingView},
    events::now_ms,
    grants::{ActiveGrant, Decision, PendingRequest, duration, grant_label, request_label},
};

pub fn pending(request: &PendingRequest) -> PendingView {
    PendingView {
        id: request_label(request.id),
        agent: request.agent.clone(),
        kind: request.resource.kind().to_owned(),
        resource: request.resource.to_string(),
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
        resource: grant.resource.to_string(),
        approver: grant.approver.clone(),
        approver_uid: grant.approver_uid,
        reason: grant.reason.clone(),
        request: grant.request.map(request_label),
        created_ms: grant.created_ms,
        expires_ms: grant.expires_ms,
        uses_left: grant.once.then_some(1),
        uses: grant.uses,
    }
}

/// The `kya events` line for a human's decision or a grant's end; `None` for what is shown
/// already (requests come from denials, and grant uses from the kernel's own events).
pub fn activity(decision: &Decision) -> Option<DenialRecord> {
    let (kind, agent, grant, why) = match decision {
        Decision::Request { .. } | Decision::GrantUsed { .. } => return None,
        Decision::Approve { request, grant } => (
            "approve",
            &grant.agent,
            Some(grant.id),
            format!(
                "{} approved {} for {} ({})",
                grant.approver,
                request_label(*request),
                grant.resource,
                terms(grant)
            ),
        ),
        Decision::Grant { grant } => (
            "grant",
            &grant.agent,
            Some(grant.id),
            format!(
                "{} granted {} ({})",
                grant.approver,
                grant.resource,
                terms(grant)
            ),
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
            format!(
                "{} refused {} for {resource}",
                by.user,
                request_label(*request)
            ),
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
            format!("grant for {resource} ended after {uses} use(s)"),
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
            format!("{} revoked the grant for {resource}: {why}", by.user),
        ),
    };
    Some(DenialRecord {
        seq: 0,
        time_ms: now_ms(),
        kind: kind.to_owned(),
        agent: agent.clone(),
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
    })
}

fn terms(grant: &ActiveGrant) -> String {
    let reason = grant
        .reason
        .as_deref()
        .map_or_else(String::new, |reason| format!(", reason: {reason}"));
    if grant.once {
        format!("once{reason}")
    } else {
        let lasts = Duration::from_secs(grant.expires_ms.saturating_sub(grant.created_ms) / 1_000);
        format!("for {}{reason}", duration::show(lasts))
    }
}
