//! `[approver_keys]`: the OpenSSH public keys whose signatures prove an approval for agents
//! with `approval = "ssh-key"`, by the user name of the human who holds them.

use std::collections::{BTreeMap, HashSet};

use ssh_key::PublicKey;
use toml::Spanned;

use super::{
    agent::{Agent, ApprovalMethod, is_valid_user_name},
    error::{ConfigErrorKind, Diagnostics},
};

/// Each user's keys, in file order.
pub type ApproverKeys = BTreeMap<String, Vec<PublicKey>>;

/// Parses every key line; a line that is not a public key is an error at that line.
pub(super) fn parse(
    raw: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    diag: &mut Diagnostics<'_>,
) -> ApproverKeys {
    let mut keys = ApproverKeys::new();
    for (user, lines) in raw {
        let span = user.span();
        let user = user.into_inner();
        if !is_valid_user_name(&user) {
            diag.error(span, ConfigErrorKind::InvalidKeyUser { name: user });
            continue;
        }
        let mut seen = HashSet::new();
        let mut parsed = Vec::with_capacity(lines.len());
        for line in lines {
            let span = line.span();
            match PublicKey::from_openssh(line.get_ref().trim()) {
                Ok(key) if !seen.insert(key.key_data().clone()) => diag.error(
                    span,
                    ConfigErrorKind::DuplicateApproverKey { user: user.clone() },
                ),
                Ok(key) => parsed.push(key),
                Err(error) => diag.error(
                    span,
                    ConfigErrorKind::InvalidApproverKey {
                        user: user.clone(),
                        problem: error.to_string(),
                    },
                ),
            }
        }
        keys.insert(user, parsed);
    }
    keys
}

/// An agent whose approvals need a key must have at least one human who may approve with one:
/// root or one of its approvers.
pub(super) fn check_agents(
    agents: &[Agent],
    approval_spans: &[Option<std::ops::Range<usize>>],
    keys: &ApproverKeys,
    diag: &mut Diagnostics<'_>,
) {
    for (agent, span) in agents.iter().zip(approval_spans) {
        if agent.approval() != ApprovalMethod::SshKey {
            continue;
        }
        let mut deciders = vec!["root".to_owned()];
        deciders.extend(agent.approvers().iter().cloned());
        let any = deciders
            .iter()
            .any(|user| keys.get(user).is_some_and(|keys| !keys.is_empty()));
        if !any {
            diag.error(
                span.clone().unwrap_or_default(),
                ConfigErrorKind::NoApproverKeys {
                    agent: agent.name().to_owned(),
                    deciders: deciders.join(", "),
                },
            );
        }
    }
}
