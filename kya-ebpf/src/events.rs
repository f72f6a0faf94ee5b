//! Counting denials and sending their events to the daemon.
use aya_ebpf::helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns};
use kya_common::{
    event::{COMM_LEN, DenyEvent, DenyKind, MatchedBy, NO_RULE},
    maps::{EVENT_BUDGET_WINDOW_NS, UNKNOWN_AGENT, event_loss},
    protect::{NAME_LEN, UNIX_PATH_MAX},
    tag::TaskTag,
};

use crate::maps::{
    DENIALS, EVENT_BUDGETS, EVENTS, EVENTS_LOST, GRANT_USES, count, count_for_agent,
};

/// Events one agent may send per budget window on each CPU; set by the loader to
/// `kya_common::maps::event_budget_per_cpu` of the host's CPUs. The compiled-in 1 keeps every
/// agent within its share should the loader not set it.
#[unsafe(no_mangle)]
static EVENT_BUDGET_PER_CPU: u32 = 1;

/// Counts a denial of `kind` and sends its event, filled in by `fill` after the common fields.
/// An agent over its event budget, or a full ring buffer, loses the event (counted in
/// `EVENTS_LOST`), never the denial, which the caller returns whatever happens here.
#[inline(always)]
pub fn report(kind: DenyKind, tag: TaskTag, matched: MatchedBy, fill: impl FnOnce(&mut DenyEvent)) {
    count_for_agent(&DENIALS, tag.agent, kind as u32);
    send(kind, tag, matched, 0, fill);
}

/// Counts an operation of `kind` that the grant `grant` let through, and reports the use with
/// why the operation would otherwise have been refused.
#[inline(always)]
pub fn report_grant_use(
    kind: DenyKind,
    tag: TaskTag,
    matched: MatchedBy,
    grant: u32,
    fill: impl FnOnce(&mut DenyEvent),
) {
    count_for_agent(&GRANT_USES, tag.agent, kind as u32);
    send(kind, tag, matched, grant, fill);
}

/// Counts an operation of `kind` that a grant let through without an event: reads and sends
/// through a file or socket whose opening was reported.
#[inline(always)]
pub fn count_grant_use(kind: DenyKind, tag: TaskTag) {
    count_for_agent(&GRANT_USES, tag.agent, kind as u32);
}

#[inline(always)]
fn send(
    kind: DenyKind,
    tag: TaskTag,
    matched: MatchedBy,
    grant: u32,
    fill: impl FnOnce(&mut DenyEvent),
) {
    if !take_budget(tag.agent) {
        count(&EVENTS_LOST, event_loss::AGENT_BUDGET);
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<DenyEvent>(0) else {
        count(&EVENTS_LOST, event_loss::RING_BUFFER);
        return;
    };
    let pid_tgid = bpf_get_current_pid_tgid();
    #[expect(clippy::cast_possible_truncation, reason = "the helper packs two u32s")]
    let event = entry.write(DenyEvent {
        kind: kind as u32,
        agent: tag.agent,
        tgid: (pid_tgid >> 32) as u32,
        pid: pid_tgid as u32,
        matched: matched as u32,
        rule: NO_RULE,
        ino: 0,
        dev: 0,
        detail: 0,
        name: [0; NAME_LEN],
        comm: bpf_get_current_comm().unwrap_or([0; COMM_LEN]),
        addr: [0; 16],
        port: 0,
        protocol: 0,
        grant,
        peer_pid: 0,
        sun_path: [0; UNIX_PATH_MAX],
        sun_path_len: 0,
        padding: 0,
    });
    fill(event);
    entry.submit(0);
}

/// Takes one event from `agent`'s budget on this CPU, starting a new window when the current
/// one is over; `false` when the window's budget is used up, or when neither the agent nor
/// `UNKNOWN_AGENT` has a budget entry (then the event is dropped: a flood must never be able
/// to crowd the ring buffer because an entry is missing).
#[inline(always)]
pub fn take_budget(agent: u32) -> bool {
    let Some(budget) = EVENT_BUDGETS
        .get_ptr_mut(agent)
        .or_else(|| EVENT_BUDGETS.get_ptr_mut(UNKNOWN_AGENT))
    else {
        return false;
    };
    // SAFETY: the value belongs to this CPU and the program cannot be preempted on it.
    let budget = unsafe { &mut *budget };
    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    if now.wrapping_sub(budget.window_start_ns) >= EVENT_BUDGET_WINDOW_NS {
        budget.window_start_ns = now;
        budget.sent = 0;
    }
    // SAFETY: a plain read of a global; volatile so the compiler keeps the load the loader
    // patches.
    let limit = unsafe { core::ptr::read_volatile(&EVENT_BUDGET_PER_CPU) };
    if budget.sent >= limit {
        return false;
    }
    budget.sent += 1;
    true
}
