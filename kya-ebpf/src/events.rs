//! Counting denials and sending their events to the daemon.
use aya_ebpf::helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid};
use kya_common::{
    event::{COMM_LEN, DenyEvent, DenyKind, MatchedBy, NO_RULE},
    protect::NAME_LEN,
    tag::TaskTag,
};

use crate::maps::{DENIALS, EVENTS, EVENTS_LOST, GRANT_USES, count, count_for_agent};

/// Counts a denial of `kind` and sends its event, filled in by `fill` after the common fields.
/// A full ring buffer loses the event (counted in `EVENTS_LOST`), never the denial, which the
/// caller returns whatever happens here.
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
    let Some(mut entry) = EVENTS.reserve::<DenyEvent>(0) else {
        count(&EVENTS_LOST, 0);
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
    });
    fill(event);
    entry.submit(0);
}
