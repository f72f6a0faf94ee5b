//! Map names and sizes, used by both sides so no name is spelled twice.

/// Tag of every agent task, keyed by the kernel address of its `task_struct`.
pub const TASK_TAGS: &str = "TASK_TAGS";
/// Executable identities (device, inode) whose exec tags the caller.
pub const EXE_RULES: &str = "EXE_RULES";
/// User ids whose processes are tagged.
pub const UID_RULES: &str = "UID_RULES";
/// cgroup v2 ids whose subtrees are tagged.
pub const CGROUP_RULES: &str = "CGROUP_RULES";
/// What the match rules in force look like, indexed by [`match_summary`].
pub const MATCH_SUMMARY: &str = "MATCH_SUMMARY";
/// Thread ids the daemon asks the adoption iterator to tag.
pub const ADOPT_REQUESTS: &str = "ADOPT_REQUESTS";
/// Protected objects by identity.
pub const PROTECTED_INODES: &str = "PROTECTED_INODES";
/// Protected directory entries by name.
pub const PROTECTED_NAMES: &str = "PROTECTED_NAMES";
/// Allowed network peers per agent (longest-prefix match).
pub const NET_ALLOW: &str = "NET_ALLOW";
/// Sockets agents accepted.
pub const INBOUND_SOCKETS: &str = "INBOUND_SOCKETS";
/// Unix sockets agents bound or made listen: their servers.
pub const UNIX_SERVERS: &str = "UNIX_SERVERS";
/// Unix sockets agents connected (or sent from) after the server was judged.
pub const UNIX_CLIENTS: &str = "UNIX_CLIENTS";
/// Current grants on file objects and unix sockets, per agent.
pub const FILE_GRANTS: &str = "FILE_GRANTS";
/// Current grants on network peers, per agent.
pub const PEER_GRANTS: &str = "PEER_GRANTS";
/// The unspent use of each single-use grant, by grant id.
pub const ONCE_TOKENS: &str = "ONCE_TOKENS";
/// Files opened under a grant.
pub const GRANTED_FILES: &str = "GRANTED_FILES";
/// Sockets connected under a grant.
pub const GRANTED_SOCKETS: &str = "GRANTED_SOCKETS";
/// Operations let through by a grant, by agent and kind.
pub const GRANT_USES: &str = "GRANT_USES";
/// Ring buffer of `DenyEvent`s.
pub const EVENTS: &str = "EVENTS";
/// Events the kernel did not hand to the daemon, by `event_loss` stage.
pub const EVENTS_LOST: &str = "EVENTS_LOST";
/// Each agent's event budget in the current window, per CPU.
pub const EVENT_BUDGETS: &str = "EVENT_BUDGETS";
/// Denials by agent and kind.
pub const DENIALS: &str = "DENIALS";
/// Internal error counters of the tagging programs.
pub const TAG_ERRORS: &str = "TAG_ERRORS";

/// Tasks (threads) that can carry a tag at once. A fork that would need one more slot is refused.
pub const MAX_TAGGED_TASKS: u32 = 65_536;
pub const MAX_EXE_RULES: u32 = 1_024;
pub const MAX_UID_RULES: u32 = 1_024;
pub const MAX_CGROUP_RULES: u32 = 1_024;
pub const MAX_ADOPT_REQUESTS: u32 = 16_384;
pub const MAX_PROTECTED_INODES: u32 = 65_536;
/// Entries by (directory, name): the catalogue's and the footholds' paths directly in each home
/// (about 60), the public names of each `~/.ssh` and `~/.gnupg` (16) and the paths whose
/// directories exist. Measured: 300 homes with common tool directories need about 30,000.
pub const MAX_PROTECTED_NAMES: u32 = 65_536;
/// Size of the `EVENTS` ring buffer (a power of two, a multiple of the page size).
pub const EVENTS_BYTES: u32 = 1 << 21;
/// `DenyKind` values are below this (0 is unused).
pub const DENY_KINDS: u32 = 24;
/// Counters in `DENIALS` and `GRANT_USES`: one per configured agent and kind, plus one per kind
/// for tags of agents no longer configured (`UNKNOWN_AGENT`).
pub const MAX_COUNTERS: u32 = 8_192;
/// The agent of counters for tags whose agent has no counters of its own.
pub const UNKNOWN_AGENT: u32 = 0;
/// Entries in `EVENT_BUDGETS`: one per agent that `DENIALS` has room to count (`UNKNOWN_AGENT`
/// included).
pub const MAX_EVENT_BUDGETS: u32 = MAX_COUNTERS / (DENY_KINDS - 1);

/// Indexes into [`EVENTS_LOST`]: where the kernel lost an event (never its denial, which the
/// hook returns and counts in `DENIALS` whatever happens to the event).
pub mod event_loss {
    /// `EVENTS` was full.
    pub const RING_BUFFER: u32 = 0;
    /// The agent had used up its event budget (see [`super::AGENT_EVENT_BUDGET`]).
    pub const AGENT_BUDGET: u32 = 1;
    pub const COUNT: u32 = 2;
}

/// Bytes one event takes in `EVENTS`: the kernel's 8-byte record header, then the event,
/// rounded up to 8 bytes.
#[expect(
    clippy::cast_possible_truncation,
    reason = "an event is a few hundred bytes"
)]
pub const EVENT_RECORD_BYTES: u32 = {
    let bytes = 8 + core::mem::size_of::<crate::event::DenyEvent>() as u32;
    bytes.div_ceil(8) * 8
};
/// Events `EVENTS` holds when full (7,710 of 272 bytes).
pub const EVENTS_CAPACITY: u32 = EVENTS_BYTES / EVENT_RECORD_BYTES;

/// Length of an event budget window, on the kernel's monotonic clock.
pub const EVENT_BUDGET_WINDOW_NS: u64 = 1_000_000_000;
/// Events one agent may send per window, over all CPUs: a quarter of what `EVENTS` holds
/// (1,724). Beyond it the agent's events are dropped in the kernel and counted
/// (`event_loss::AGENT_BUDGET`); its denials are refused and counted all the same.
///
/// Why this bounds a flood: the daemon drains `EVENTS` continuously, far faster than 1,724
/// events a second even under emulation, so one agent never holds more than its last window
/// or two of events in the buffer, at most half of it and mostly under a quarter. Another
/// agent's denial during the flood finds room, reaches the daemon behind at most that many
/// events and becomes a pending request at once. Four agents flooding together can still fill
/// the buffer; their events are then lost (and counted) like everyone's.
///
/// The budget is kept per CPU, so that counting needs no atomics: each CPU allows
/// [`event_budget_per_cpu`] of the agent's events per window.
pub const AGENT_EVENT_BUDGET: u32 = EVENTS_CAPACITY / 4;

/// Read-only global of the kernel object that holds [`event_budget_per_cpu`], set by the
/// loader. Left at its compiled-in value (1) it still never lets an agent exceed its share.
pub const EVENT_BUDGET_GLOBAL: &str = "EVENT_BUDGET_PER_CPU";

/// Events one agent may send per window on each CPU, on a host with `cpus` possible CPUs: an
/// equal share of [`AGENT_EVENT_BUDGET`], at least 1 (only on hosts with more CPUs than the
/// budget has events may the agent's total exceed it).
#[must_use]
pub const fn event_budget_per_cpu(cpus: u32) -> u32 {
    let share = AGENT_EVENT_BUDGET / if cpus == 0 { 1 } else { cpus };
    if share == 0 { 1 } else { share }
}

/// One agent's event budget on one CPU (a value of `EVENT_BUDGETS`). The daemon creates one,
/// at zero, for every configured agent and for `UNKNOWN_AGENT` (shared by agents without
/// their own); the kernel starts a new window when the current one is over.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventBudget {
    /// When the current window began (`bpf_ktime_get_ns`).
    pub window_start_ns: u64,
    /// Events sent in the current window.
    pub sent: u32,
    pub padding: u32,
}

const _: () = assert!(core::mem::size_of::<EventBudget>() == 16);

/// Key of the `DENIALS` and `GRANT_USES` counters. The daemon creates every counter (at zero)
/// before any task is tagged, so the kernel only ever increments existing ones.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CountKey {
    pub agent: u32,
    /// `DenyKind`.
    pub kind: u32,
}

const _: () = assert!(core::mem::size_of::<CountKey>() == 8);

#[cfg(feature = "user")]
mod user {
    // SAFETY: two integers, no padding (size asserted above).
    unsafe impl aya::Pod for super::CountKey {}
    // SAFETY: integers with an explicit padding field, no implicit padding (size asserted).
    unsafe impl aya::Pod for super::EventBudget {}
}
pub const MAX_NET_RULES: u32 = 65_536;
pub const MAX_INBOUND_SOCKETS: u32 = 65_536;
pub const MAX_UNIX_SERVERS: u32 = 65_536;
pub const MAX_UNIX_CLIENTS: u32 = 65_536;

pub const MAX_FILE_GRANTS: u32 = 4_096;
pub const MAX_PEER_GRANTS: u32 = 4_096;
pub const MAX_ONCE_TOKENS: u32 = 4_096;
pub const MAX_GRANTED_FILES: u32 = 16_384;
pub const MAX_GRANTED_SOCKETS: u32 = 16_384;

/// Deepest cgroup level the kernel walks when matching a cgroup subtree rule.
pub const MAX_CGROUP_DEPTH: u32 = 16;

/// Indexes into [`MATCH_SUMMARY`]: what the kernel must know about the match rules without
/// walking them. Each is raised before rules are added and lowered after they are removed.
pub mod match_summary {
    /// The deepest cgroup level any rule names (0: no cgroup rule, no walk).
    pub const CGROUP_DEPTH: u32 = 0;
    /// How many `match.exe` rules there are: an exec whose file cannot be read is refused
    /// while there is one, since it might be an agent's executable.
    pub const EXE_RULES: u32 = 1;
    /// How many `match.uid` rules there are: a uid change whose credentials cannot be read is
    /// refused while there is one.
    pub const UID_RULES: u32 = 2;
    pub const COUNT: u32 = 3;
}

/// Indexes into [`TAG_ERRORS`].
pub mod tag_error {
    /// A tagged task's child could not be recorded; the fork was refused.
    pub const FORK_INSERT: u32 = 0;
    /// A matching exec could not be recorded; the exec was refused.
    pub const EXEC_INSERT: u32 = 1;
    /// A uid change to a matching uid could not be recorded; the change was refused.
    pub const SETUID_INSERT: u32 = 2;
    /// A kernel struct read failed while matching an exec or a uid change; the operation was
    /// refused if a rule of that kind exists (see [`super::match_summary`]); or while
    /// recording a mount namespace an agent made (its mount operations there are then refused).
    pub const KERNEL_READ: u32 = 3;
    /// A task moved or forked into a matching cgroup could not be recorded (tracepoints cannot
    /// refuse).
    pub const CGROUP_INSERT: u32 = 4;
    /// A denial or grant use found no counter for its agent or for `UNKNOWN_AGENT` (the
    /// operation's outcome is unaffected).
    pub const UNCOUNTED: u32 = 5;
    /// A key an agent made could not be recorded in `AGENT_KEYS`; its creation was refused.
    pub const KEY_INSERT: u32 = 6;
    pub const COUNT: u32 = 7;
}

/// Every map, with its key and value sizes and capacity: what must match for a daemon to take
/// over maps pinned by another build. (`EVENTS` is a ring buffer: its "capacity" is its size.)
pub const LAYOUTS: &[(&str, usize, usize, u32)] = {
    use core::mem::size_of;

    use crate::{
        grant::{Grant, GrantedFile, GrantedSocket, UnixClient},
        net::{InboundSocket, NetKey},
        protect::{InodeRuleKey, NameRuleKey, ProtectRule},
        tag::{InodeKey, TaskTag},
    };
    &[
        (TASK_TAGS, 8, size_of::<TaskTag>(), MAX_TAGGED_TASKS),
        (EXE_RULES, size_of::<InodeKey>(), 4, MAX_EXE_RULES),
        (UID_RULES, 4, 4, MAX_UID_RULES),
        (CGROUP_RULES, 8, 4, MAX_CGROUP_RULES),
        (MATCH_SUMMARY, 4, 4, match_summary::COUNT),
        (ADOPT_REQUESTS, 4, size_of::<TaskTag>(), MAX_ADOPT_REQUESTS),
        (
            PROTECTED_INODES,
            size_of::<InodeRuleKey>(),
            size_of::<ProtectRule>(),
            MAX_PROTECTED_INODES,
        ),
        (
            PROTECTED_NAMES,
            size_of::<NameRuleKey>(),
            size_of::<ProtectRule>(),
            MAX_PROTECTED_NAMES,
        ),
        (NET_ALLOW, 4 + size_of::<NetKey>(), 4, MAX_NET_RULES),
        (
            INBOUND_SOCKETS,
            8,
            size_of::<InboundSocket>(),
            MAX_INBOUND_SOCKETS,
        ),
        (
            UNIX_SERVERS,
            8,
            size_of::<InboundSocket>(),
            MAX_UNIX_SERVERS,
        ),
        (UNIX_CLIENTS, 8, size_of::<UnixClient>(), MAX_UNIX_CLIENTS),
        (
            FILE_GRANTS,
            size_of::<InodeRuleKey>(),
            size_of::<Grant>(),
            MAX_FILE_GRANTS,
        ),
        (
            PEER_GRANTS,
            size_of::<NetKey>(),
            size_of::<Grant>(),
            MAX_PEER_GRANTS,
        ),
        (ONCE_TOKENS, 4, 4, MAX_ONCE_TOKENS),
        (
            GRANTED_FILES,
            8,
            size_of::<GrantedFile>(),
            MAX_GRANTED_FILES,
        ),
        (
            GRANTED_SOCKETS,
            8,
            size_of::<GrantedSocket>(),
            MAX_GRANTED_SOCKETS,
        ),
        (GRANT_USES, size_of::<CountKey>(), 8, MAX_COUNTERS),
        (DENIALS, size_of::<CountKey>(), 8, MAX_COUNTERS),
        (EVENTS, 0, 0, EVENTS_BYTES),
        (EVENTS_LOST, 4, 8, event_loss::COUNT),
        (
            EVENT_BUDGETS,
            4,
            size_of::<EventBudget>(),
            MAX_EVENT_BUDGETS,
        ),
        (TAG_ERRORS, 4, 8, tag_error::COUNT),
        (
            crate::mounts::OWN_MOUNT_NAMESPACES,
            8,
            4,
            crate::mounts::MAX_OWN_MOUNT_NAMESPACES,
        ),
        (crate::keys::AGENT_KEYS, 8, 4, crate::keys::MAX_AGENT_KEYS),
        (
            crate::verdict::CLEAR_VERDICTS,
            size_of::<crate::verdict::VerdictKey>(),
            size_of::<crate::verdict::ClearVerdict>(),
            crate::verdict::MAX_CLEAR_VERDICTS,
        ),
        (crate::verdict::RULES_GENERATION, 4, 4, 1),
        (
            crate::verdict::VERDICT_SCRATCH,
            4,
            size_of::<crate::verdict::VerdictKey>() + size_of::<crate::verdict::ClearVerdict>(),
            1,
        ),
    ]
};

/// Bumped by hand when a map changes in a way its sizes do not show (its type, the meaning of
/// a field).
const LAYOUT_REVISION: u32 = 1;

/// A fingerprint of `LAYOUTS` and `LAYOUT_REVISION`: maps pinned under one fingerprint are only
/// ever taken over by a daemon with the same one.
#[must_use]
#[expect(
    clippy::cast_possible_truncation,
    reason = "map key and value sizes are tiny; a fingerprint may drop bits anyway"
)]
pub const fn layout_fingerprint() -> u32 {
    const fn mix(mut hash: u32, value: u32) -> u32 {
        let bytes = value.to_le_bytes();
        let mut index = 0;
        while index < 4 {
            hash ^= bytes[index] as u32;
            hash = hash.wrapping_mul(0x0100_0193);
            index += 1;
        }
        hash
    }
    let mut hash = mix(0x811c_9dc5, LAYOUT_REVISION);
    let mut map = 0;
    while map < LAYOUTS.len() {
        let (name, key, value, capacity) = LAYOUTS[map];
        let bytes = name.as_bytes();
        let mut index = 0;
        while index < bytes.len() {
            hash = mix(hash, bytes[index] as u32);
            index += 1;
        }
        hash = mix(hash, key as u32);
        hash = mix(hash, value as u32);
        hash = mix(hash, capacity);
        map += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_agent_gets_at_most_a_quarter_of_the_ring_buffer_per_window() {
        assert_eq!(EVENT_RECORD_BYTES, 272);
        assert_eq!(EVENTS_CAPACITY, 7_710);
        assert_eq!(AGENT_EVENT_BUDGET, 1_927);
        for cpus in [1, 2, 3, 4, 8, 64, 256, 1_927] {
            let total = event_budget_per_cpu(cpus) * cpus;
            assert!(total <= EVENTS_CAPACITY / 4, "{cpus} CPUs: {total}");
            assert!(
                total > AGENT_EVENT_BUDGET - cpus,
                "{cpus} CPUs: {total} wastes the share"
            );
        }
        assert_eq!(event_budget_per_cpu(4_096), 1);
        assert_eq!(
            event_budget_per_cpu(0),
            AGENT_EVENT_BUDGET,
            "no CPUs read as one"
        );
    }

    #[test]
    fn every_counted_agent_has_a_budget() {
        // Kinds 1.. are counted; kind 0 is unused.
        let counted_agents = MAX_COUNTERS / (DENY_KINDS - 1);
        assert!(counted_agents <= MAX_EVENT_BUDGETS);
    }
}
