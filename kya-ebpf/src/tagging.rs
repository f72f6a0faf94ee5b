//! Which agent a task belongs to, and the match rules that make a task an agent.
//!
//! Every hook starts with [`tag_of`] on the current task: one hash lookup, after which an
//! untagged task that no rule concerns leaves. The hooks that match tasks to agents first read
//! whether any rule of their kind exists (`MATCH_SUMMARY`, an array read the verifier inlines),
//! and without one leave before even that lookup.
use aya_ebpf::{
    bindings::{BPF_ANY, BPF_NOEXIST},
    helpers::{bpf_get_current_uid_gid, generated::bpf_get_current_ancestor_cgroup_id},
};
use kya_common::{
    maps::{MAX_CGROUP_DEPTH, match_summary},
    tag::{InodeKey, MatchReason, TaskTag, origin},
};

use crate::{
    kernel,
    maps::{CGROUP_RULES, EXE_RULES, MATCH_SUMMARY, TASK_TAGS, UID_RULES},
};

/// The address of the current task's `task_struct`: the key of `TASK_TAGS`.
#[inline(always)]
pub fn current_task() -> u64 {
    // SAFETY: the helper takes no arguments and cannot fail.
    unsafe { aya_ebpf::helpers::generated::bpf_get_current_task() }
}

/// The tag of `task`, if it is an agent task.
#[inline(always)]
pub fn tag_of(task: u64) -> Option<TaskTag> {
    // SAFETY: the value is copied out before the map can change under us.
    unsafe { TASK_TAGS.get(&task).copied() }
}

/// Records `tag` for `task`, replacing any tag it had.
#[inline(always)]
pub fn record(task: u64, tag: &TaskTag) -> Result<(), i32> {
    TASK_TAGS.insert(&task, tag, u64::from(BPF_ANY))
}

/// Records `tag` for `task` unless it is tagged already: a task never changes agent.
#[inline(always)]
pub fn record_new(task: u64, tag: &TaskTag) -> Result<(), i32> {
    match TASK_TAGS.insert(&task, tag, u64::from(BPF_NOEXIST)) {
        Ok(()) => Ok(()),
        // Tagged in the meantime: the existing tag stands, and the task is an agent either way.
        Err(_) if tag_of(task).is_some() => Ok(()),
        Err(error) => Err(error),
    }
}

fn matched(agent: u32, reason: MatchReason) -> TaskTag {
    TaskTag::new(agent, reason, origin::MATCHED)
}

/// The agent whose `match.exe` names this file.
#[inline(always)]
pub fn match_exe(file: &InodeKey) -> Option<TaskTag> {
    // SAFETY: the value is copied out.
    unsafe { EXE_RULES.get(file) }.map(|agent| matched(*agent, MatchReason::Exe))
}

/// The agent whose `match.uid` names `uid`.
#[inline(always)]
pub fn match_uid(uid: u32) -> Option<TaskTag> {
    // SAFETY: the value is copied out.
    unsafe { UID_RULES.get(&uid) }.map(|agent| matched(*agent, MatchReason::Uid))
}

/// The agent whose `match.uid` names the current task's real uid.
#[inline(always)]
pub fn match_current_uid() -> Option<TaskTag> {
    // The low half is the uid; truncation is the helper's documented encoding.
    #[expect(clippy::cast_possible_truncation, reason = "low 32 bits hold the uid")]
    let uid = bpf_get_current_uid_gid() as u32;
    match_uid(uid)
}

/// An entry of `MATCH_SUMMARY`.
#[inline(always)]
fn summary(index: u32) -> u32 {
    MATCH_SUMMARY.get(index).copied().unwrap_or(0)
}

/// The deepest cgroup level any rule names: how far the ancestor walks need to look.
#[inline(always)]
fn rule_depth() -> u32 {
    summary(match_summary::CGROUP_DEPTH).min(MAX_CGROUP_DEPTH)
}

/// Whether rules of the kind counted at `index` may exist: a count that cannot be read counts
/// as some (these answers decide whether a failed read refuses).
#[inline(always)]
fn may_have_rules(index: u32) -> bool {
    MATCH_SUMMARY.get(index).is_none_or(|count| *count > 0)
}

/// Whether any `match.exe` rule may exist.
#[inline(always)]
pub fn has_exe_rules() -> bool {
    may_have_rules(match_summary::EXE_RULES)
}

/// Whether any `match.uid` rule may exist.
#[inline(always)]
pub fn has_uid_rules() -> bool {
    may_have_rules(match_summary::UID_RULES)
}

/// Whether any cgroup rule exists: without one, no cgroup needs reading.
#[inline(always)]
pub fn has_cgroup_rules() -> bool {
    rule_depth() > 0
}

#[inline(always)]
fn match_cgroup_id(id: u64) -> Option<TaskTag> {
    // SAFETY: the value is copied out.
    unsafe { CGROUP_RULES.get(&id) }.map(|agent| matched(*agent, MatchReason::Cgroup))
}

/// The agent whose `match.cgroup` subtree holds the current task (the deepest rule wins).
#[inline(always)]
pub fn match_current_cgroup() -> Option<TaskTag> {
    let depth = rule_depth();
    for step in 0..MAX_CGROUP_DEPTH {
        if step >= depth {
            break;
        }
        let level = depth - step;
        #[expect(clippy::cast_possible_wrap, reason = "level <= MAX_CGROUP_DEPTH")]
        // SAFETY: the helper only reads the current task's cgroup.
        let id = unsafe { bpf_get_current_ancestor_cgroup_id(level as i32) };
        if id != 0
            && let Some(tag) = match_cgroup_id(id)
        {
            return Some(tag);
        }
    }
    None
}

/// The agent whose `match.cgroup` subtree holds `cgroup` (the deepest rule wins).
#[inline(always)]
pub fn match_cgroup(cgroup: u64) -> Result<Option<TaskTag>, kernel::ReadError> {
    let depth = rule_depth();
    if depth == 0 {
        return Ok(None);
    }
    let level = kernel::cgroup_level(cgroup)?;
    let deepest = level.min(depth);
    for step in 0..MAX_CGROUP_DEPTH {
        if step >= deepest {
            break;
        }
        let id = kernel::cgroup_ancestor_id(cgroup, deepest - step)?;
        if let Some(tag) = match_cgroup_id(id) {
            return Ok(Some(tag));
        }
    }
    Ok(None)
}
