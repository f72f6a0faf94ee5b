//! Turns the raw config into the validated one, recording every problem rather than stopping at
//! the first, each at the span of the value at fault.

use std::{
    collections::{HashMap, HashSet, hash_map::Entry},
    path::{Component, Path, PathBuf},
};

use toml::Spanned;

use super::{
    agent::{
        Agent, AgentId, ApprovalMethod, FileRules, MatchRules, NetworkRules, OnOwnerGone,
        is_valid_name, is_valid_user_name,
    },
    error::{ConfigErrorKind, Diagnostics, FileList, PathProblem, UnixList},
    footholds,
    network_rule::NetworkRule,
    path_pattern::PathPattern,
    schema::{RawAgent, RawFiles, RawMatch, RawNetwork},
    socket_path::{SocketAddress, parse_socket_address},
};
use crate::paths;

/// Rules already claimed by an earlier agent, by the name of that agent: a process matching a
/// rule claimed twice would belong to two agents.
#[derive(Default)]
struct Claims {
    exe: HashMap<PathBuf, String>,
    cgroup: HashMap<String, String>,
    uid: HashMap<u32, String>,
}

/// Validates every `[[agents]]` entry, alone and against the others.
pub(super) fn agents(
    raw: Vec<RawAgent>,
    diag: &mut Diagnostics<'_>,
) -> (Vec<Agent>, Vec<Option<std::ops::Range<usize>>>) {
    let mut approval_spans = Vec::with_capacity(raw.len());
    let mut first_lines: HashMap<String, usize> = HashMap::new();
    let mut ids: HashMap<AgentId, String> = HashMap::new();
    let mut claims = Claims::default();
    let mut agents = Vec::with_capacity(raw.len());

    for RawAgent {
        name,
        owner,
        approvers,
        approval,
        on_owner_gone,
        rules,
        files,
        network,
    } in raw
    {
        let span = name.span();
        let name = name.into_inner();
        if !is_valid_name(&name) {
            diag.error(
                span.clone(),
                ConfigErrorKind::InvalidAgentName { name: name.clone() },
            );
        }
        let id = AgentId::from_name(&name);
        match first_lines.entry(name.clone()) {
            Entry::Occupied(first) => diag.error(
                span,
                ConfigErrorKind::DuplicateAgentName {
                    name: name.clone(),
                    first_line: *first.get(),
                },
            ),
            Entry::Vacant(vacant) => {
                vacant.insert(diag.line_of(span.start));
                match ids.entry(id) {
                    Entry::Occupied(other) => diag.error(
                        span,
                        ConfigErrorKind::AgentIdCollision {
                            name: name.clone(),
                            other: other.get().clone(),
                            id: id.get(),
                        },
                    ),
                    Entry::Vacant(vacant) => {
                        vacant.insert(name.clone());
                    }
                }
            }
        }

        if owner.get_ref().trim().is_empty() {
            diag.error(
                owner.span(),
                ConfigErrorKind::EmptyOwner {
                    agent: name.clone(),
                },
            );
        }
        let owner = owner.into_inner().trim().to_owned();

        let approvers = approvers_of(&name, approvers, diag);
        approval_spans.push(approval.as_ref().map(Spanned::span));
        let approval = approval_of(&name, approval, diag);
        let on_owner_gone = on_owner_gone_of(&name, on_owner_gone, diag);
        let rules = match_rules(&name, rules, &mut claims, diag);
        let files = file_rules(&name, files, diag);
        let network = network_rules(&name, network, diag);
        agents.push(Agent {
            id,
            name,
            owner,
            approvers,
            approval,
            on_owner_gone,
            rules,
            files,
            network,
        });
    }
    (agents, approval_spans)
}

/// Validates the `approval` of the agent `agent`; absent means `uid`.
fn approval_of(
    agent: &str,
    raw: Option<Spanned<String>>,
    diag: &mut Diagnostics<'_>,
) -> ApprovalMethod {
    let Some(raw) = raw else {
        return ApprovalMethod::default();
    };
    ApprovalMethod::from_name(raw.get_ref()).unwrap_or_else(|| {
        diag.error(
            raw.span(),
            ConfigErrorKind::InvalidApprovalMethod {
                agent: agent.to_owned(),
                value: raw.get_ref().clone(),
            },
        );
        ApprovalMethod::default()
    })
}

/// Validates `on_owner_gone`: `contain` (the default) or `stop`.
fn on_owner_gone_of(
    agent: &str,
    raw: Option<Spanned<String>>,
    diag: &mut Diagnostics<'_>,
) -> OnOwnerGone {
    let Some(raw) = raw else {
        return OnOwnerGone::default();
    };
    let span = raw.span();
    match raw.get_ref().as_str() {
        "contain" => OnOwnerGone::Contain,
        "stop" => OnOwnerGone::Stop,
        _ => {
            let agent = agent.to_owned();
            let value = raw.into_inner();
            diag.error(span, ConfigErrorKind::InvalidOnOwnerGone { agent, value });
            OnOwnerGone::default()
        }
    }
}

/// Validates the `approvers` of the agent `agent`: each a user name, each once. Whether the users
/// exist is not checked: hosts add users later, and the daemon looks the approver up when they
/// approve.
fn approvers_of(agent: &str, raw: Vec<Spanned<String>>, diag: &mut Diagnostics<'_>) -> Vec<String> {
    let mut approvers = Vec::with_capacity(raw.len());
    let mut seen = HashSet::with_capacity(raw.len());
    for approver in raw {
        let span = approver.span();
        let name = approver.into_inner();
        if !is_valid_user_name(&name) {
            let agent = agent.to_owned();
            diag.error(span, ConfigErrorKind::InvalidApprover { agent, name });
        } else if !seen.insert(name.clone()) {
            let agent = agent.to_owned();
            diag.error(span, ConfigErrorKind::DuplicateApprover { agent, name });
        } else {
            approvers.push(name);
        }
    }
    approvers
}

/// Validates one `[agents.match]` table of the agent `agent`.
fn match_rules(
    agent: &str,
    raw: RawMatch,
    claims: &mut Claims,
    diag: &mut Diagnostics<'_>,
) -> MatchRules {
    let mut rules = MatchRules::default();

    for exe in raw.exe {
        let span = exe.span();
        let exe = PathBuf::from(exe.into_inner());
        if let Some(problem) = exe_problem(&exe) {
            let agent = agent.to_owned();
            diag.error(span, ConfigErrorKind::InvalidExe { agent, problem });
        } else if let Some(other) = claim(&mut claims.exe, exe.clone(), agent) {
            let agent = agent.to_owned();
            diag.error(span, ConfigErrorKind::DuplicateExe { agent, other });
        }
        rules.exe.push(exe);
    }

    for cgroup in raw.cgroup {
        let span = cgroup.span();
        let cgroup = cgroup.into_inner();
        if let Some(problem) = cgroup_problem(&cgroup) {
            let agent = agent.to_owned();
            diag.error(span, ConfigErrorKind::InvalidCgroup { agent, problem });
        } else if let Some(other) = claim(&mut claims.cgroup, cgroup.clone(), agent) {
            let agent = agent.to_owned();
            diag.error(span, ConfigErrorKind::DuplicateCgroup { agent, other });
        }
        rules.cgroup.push(PathBuf::from(cgroup));
    }

    for uid in raw.uid {
        let (span, uid) = (uid.span(), Spanned::into_inner(uid));
        if uid == 0 {
            let agent = agent.to_owned();
            diag.error(span, ConfigErrorKind::RootUid { agent });
        } else if let Some(other) = claim(&mut claims.uid, uid, agent) {
            let agent = agent.to_owned();
            diag.error(span, ConfigErrorKind::DuplicateUid { agent, other, uid });
        }
        rules.uid.push(uid);
    }

    rules
}

/// Validates one `[agents.files]` table of the agent `agent`. Repeats are harmless and kept; an
/// `allow` entry that exempts nothing is not an error (it may name a file inside a protected
/// tree that does not exist yet).
///
/// `allow_writes` entries must name an entry of the foothold catalogue or a path inside one of
/// its trees: it exempts nothing else (kya's own files least of all), and a path that is not a
/// foothold is a mistake worth hearing about.
fn file_rules(agent: &str, raw: RawFiles, diag: &mut Diagnostics<'_>) -> FileRules {
    let protect = path_patterns(agent, FileList::Protect, raw.protect, diag);
    let allow = path_patterns(agent, FileList::Allow, raw.allow, diag);
    let protect_writes = path_patterns(agent, FileList::ProtectWrites, raw.protect_writes, diag);
    let mut allow_writes = Vec::with_capacity(raw.allow_writes.len());
    for text in raw.allow_writes {
        let span = text.span();
        let Some(pattern) = path_patterns(agent, FileList::AllowWrites, vec![text], diag).pop()
        else {
            continue;
        };
        if footholds::covers(&pattern) {
            allow_writes.push(pattern);
        } else {
            let kind = ConfigErrorKind::NotAFoothold {
                agent: agent.to_owned(),
                pattern: pattern.to_string(),
            };
            diag.error(span, kind);
        }
    }
    FileRules {
        protect,
        allow,
        protect_writes,
        allow_writes,
    }
}

/// Parses the patterns of one `files` list, recording each invalid one at its span.
fn path_patterns(
    agent: &str,
    list: FileList,
    raw: Vec<Spanned<String>>,
    diag: &mut Diagnostics<'_>,
) -> Vec<PathPattern> {
    let mut patterns = Vec::with_capacity(raw.len());
    for text in raw {
        match PathPattern::parse(text.get_ref()) {
            Ok(pattern) => patterns.push(pattern),
            Err(problem) => {
                let agent = agent.to_owned();
                let kind = ConfigErrorKind::InvalidFilePattern {
                    agent,
                    list,
                    problem,
                };
                diag.error(text.span(), kind);
            }
        }
    }
    patterns
}

/// Validates one `[agents.network]` table of the agent `agent`. As in `[agents.files]`, repeats
/// are harmless and kept, and a `unix_allow` entry that exempts nothing is not an error.
fn network_rules(agent: &str, raw: RawNetwork, diag: &mut Diagnostics<'_>) -> NetworkRules {
    let mut allow = Vec::with_capacity(raw.allow.len());
    let mut allow_lines = Vec::with_capacity(raw.allow.len());
    for text in raw.allow {
        match NetworkRule::parse(text.get_ref()) {
            Ok(rule) => {
                allow.push(rule);
                allow_lines.push(diag.line_of(text.span().start));
            }
            Err(problem) => {
                let agent = agent.to_owned();
                let kind = ConfigErrorKind::InvalidNetworkRule { agent, problem };
                diag.error(text.span(), kind);
            }
        }
    }
    NetworkRules {
        allow,
        allow_lines,
        unix_deny: sockets(agent, UnixList::Deny, raw.unix_deny, diag),
        unix_allow: sockets(agent, UnixList::Allow, raw.unix_allow, diag),
        allow_dns: raw.allow_dns.unwrap_or(NetworkRules::DEFAULT_ALLOW_DNS),
    }
}

/// Checks the sockets of one `network.unix_*` list (paths and `@name`s), recording each
/// invalid one at its span.
fn sockets(
    agent: &str,
    list: UnixList,
    raw: Vec<Spanned<String>>,
    diag: &mut Diagnostics<'_>,
) -> Vec<SocketAddress> {
    let mut sockets = Vec::with_capacity(raw.len());
    for text in raw {
        match parse_socket_address(text.get_ref()) {
            Ok(path) => sockets.push(path),
            Err(problem) => {
                let agent = agent.to_owned();
                let kind = ConfigErrorKind::InvalidSocketPath {
                    agent,
                    list,
                    problem,
                };
                diag.error(text.span(), kind);
            }
        }
    }
    sockets
}

/// Claims `rule` for `agent`; returns the other agent that already claimed it, if any. Repeating
/// a rule within one agent is harmless and not reported.
fn claim<K: std::hash::Hash + Eq>(
    claims: &mut HashMap<K, String>,
    rule: K,
    agent: &str,
) -> Option<String> {
    match claims.entry(rule) {
        Entry::Occupied(owner) if owner.get() != agent => Some(owner.get().clone()),
        Entry::Occupied(_) => None,
        Entry::Vacant(vacant) => {
            vacant.insert(agent.to_owned());
            None
        }
    }
}

/// Why `exe` cannot name an executable file, if it cannot.
fn exe_problem(exe: &Path) -> Option<PathProblem> {
    let text = exe.as_os_str().as_encoded_bytes();
    if !exe.is_absolute() {
        Some(PathProblem::NotAbsolute)
    } else if exe.components().any(|c| c == Component::ParentDir) {
        Some(PathProblem::ParentComponent)
    } else if text.ends_with(b"/") {
        Some(PathProblem::TrailingSlash)
    } else {
        None
    }
}

/// Why `cgroup` cannot name a cgroup2 subtree below the root, if it cannot.
fn cgroup_problem(cgroup: &str) -> Option<PathProblem> {
    let under_mount = cgroup
        .strip_prefix(paths::CGROUP2_ROOT)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    if !cgroup.starts_with('/') {
        Some(PathProblem::NotAbsolute)
    } else if cgroup == "/" {
        Some(PathProblem::CgroupRoot)
    } else if under_mount {
        Some(PathProblem::CgroupMountPrefix)
    } else if cgroup.split('/').any(|component| component == "..") {
        Some(PathProblem::ParentComponent)
    } else if cgroup.contains("//") {
        Some(PathProblem::EmptyComponent)
    } else if cgroup.ends_with('/') {
        Some(PathProblem::TrailingSlash)
    } else {
        None
    }
}
