//! Every map of the kernel programs, with who writes it and who reads it.
use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, PerCpuHashMap, RingBuf},
};
use kya_common::{
    grant::{Grant, GrantedFile, GrantedSocket, UnixClient},
    maps::{
        CountKey, EVENTS_BYTES, EventBudget, MAX_ADOPT_REQUESTS, MAX_CGROUP_RULES, MAX_COUNTERS,
        MAX_EVENT_BUDGETS, MAX_EXE_RULES, MAX_FILE_GRANTS, MAX_GRANTED_FILES, MAX_GRANTED_SOCKETS,
        MAX_INBOUND_SOCKETS, MAX_NET_RULES, MAX_ONCE_TOKENS, MAX_PEER_GRANTS, MAX_PROTECTED_INODES,
        MAX_PROTECTED_NAMES, MAX_TAGGED_TASKS, MAX_UID_RULES, MAX_UNIX_CLIENTS, MAX_UNIX_SERVERS,
        UNKNOWN_AGENT, event_loss, match_summary, tag_error,
    },
    net::{InboundSocket, NetKey},
    protect::{InodeRuleKey, NameRuleKey, ProtectRule},
    tag::{InodeKey, TaskTag},
};

/// Agent tag of every agent task, keyed by the address of its `task_struct`.
/// Written by `task_alloc` (inheritance), the match hooks and the adoption iterator; entries are
/// removed by `task_free`. Read by every hook and by the listing iterator.
#[map]
pub static TASK_TAGS: HashMap<u64, TaskTag> = HashMap::with_max_entries(MAX_TAGGED_TASKS, 0);

/// Executable identities that tag the task executing them; value is the agent id.
/// Written by the daemon; read by `bprm_check_security`.
#[map]
pub static EXE_RULES: HashMap<InodeKey, u32> = HashMap::with_max_entries(MAX_EXE_RULES, 0);

/// User ids whose processes are agents; value is the agent id.
/// Written by the daemon; read by `bprm_check_security`, `task_alloc` and `task_fix_setuid`.
#[map]
pub static UID_RULES: HashMap<u32, u32> = HashMap::with_max_entries(MAX_UID_RULES, 0);

/// cgroup v2 ids whose subtrees are agents; value is the agent id.
/// Written by the daemon; read by the match hooks and `cgroup_attach_task`.
#[map]
pub static CGROUP_RULES: HashMap<u64, u32> = HashMap::with_max_entries(MAX_CGROUP_RULES, 0);

/// What the match rules look like (`kya_common::maps::match_summary`): the deepest cgroup level
/// named by a rule, so the ancestor walk costs nothing on hosts without cgroup rules, and how
/// many exe and uid rules there are, so a read error refuses only where a rule could match.
/// Written by the daemon.
#[map]
pub static MATCH_SUMMARY: Array<u32> = Array::with_max_entries(match_summary::COUNT, 0);

/// Thread ids the daemon wants tagged (processes that predate it, `kya run`), with their tag.
/// Written and cleared by the daemon; read by the `adopt_tasks` iterator.
#[map]
pub static ADOPT_REQUESTS: HashMap<u32, TaskTag> = HashMap::with_max_entries(MAX_ADOPT_REQUESTS, 0);

/// Counters of internal errors, indexed by `kya_common::maps::tag_error`, one per CPU so
/// increments need no atomics. Read (and summed) by the daemon.
#[map]
pub static TAG_ERRORS: PerCpuArray<u64> = PerCpuArray::with_max_entries(tag_error::COUNT, 0);

/// Adds one to an internal error counter.
pub fn count_error(index: u32) {
    count(&TAG_ERRORS, index);
}

/// Protected objects by identity, per agent (`ALL_AGENTS` for the built-in catalogue).
/// Written by the daemon; read by the file hooks.
#[map]
pub static PROTECTED_INODES: HashMap<InodeRuleKey, ProtectRule> =
    HashMap::with_max_entries(MAX_PROTECTED_INODES, 0);

/// Protected directory entries by (directory, name), per agent: a file created or replaced at
/// a protected path is protected before the daemon hears of it.
/// Written by the daemon; read by the file hooks.
#[map]
pub static PROTECTED_NAMES: HashMap<NameRuleKey, ProtectRule> =
    HashMap::with_max_entries(MAX_PROTECTED_NAMES, 0);

/// Denial events for the daemon. A full buffer never turns a denial into an allow: the
/// operation is refused anyway and the loss counted in `EVENTS_LOST`.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

/// Events not handed to the daemon, by `kya_common::maps::event_loss` stage, one counter per
/// CPU. Written by `events::send`; read by the daemon.
#[map]
pub static EVENTS_LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(event_loss::COUNT, 0);

/// Each agent's event budget in the current window, one per CPU so that taking from it needs
/// no atomics. Created (at zero) by the daemon for every configured agent and `UNKNOWN_AGENT`;
/// updated by `events::send`. Never inserted by the kernel: an agent without an entry shares
/// `UNKNOWN_AGENT`'s.
#[map]
pub static EVENT_BUDGETS: PerCpuHashMap<u32, EventBudget> =
    PerCpuHashMap::with_max_entries(MAX_EVENT_BUDGETS, 0);

/// Denials by agent and `DenyKind`, one counter per CPU, counted whether or not the event
/// reached the daemon. Created (at zero) by the daemon; incremented by the hooks; read by the
/// daemon for its metrics.
#[map]
pub static DENIALS: PerCpuHashMap<CountKey, u64> = PerCpuHashMap::with_max_entries(MAX_COUNTERS, 0);

/// Adds one to the counter of (`agent`, `kind`), or of (`UNKNOWN_AGENT`, `kind`) for an agent
/// without counters. Never inserts: a missing counter is counted as an internal error.
pub fn count_for_agent(counters: &PerCpuHashMap<CountKey, u64>, agent: u32, kind: u32) {
    for agent in [agent, UNKNOWN_AGENT] {
        if let Some(counter) = counters.get_ptr_mut(CountKey { agent, kind }) {
            // SAFETY: the value belongs to this CPU and the program cannot be preempted on it.
            unsafe { *counter += 1 };
            return;
        }
    }
    count_error(tag_error::UNCOUNTED);
}

/// Adds one to slot `index` of a per-CPU counter array.
pub fn count(counters: &PerCpuArray<u64>, index: u32) {
    if let Some(counter) = counters.get_ptr_mut(index) {
        // SAFETY: the slot belongs to this CPU and the program cannot be preempted on it.
        unsafe { *counter += 1 };
    }
}

/// Allowed network peers per agent, longest-prefix match on (agent, port, address); port 0
/// allows every port. Written by the daemon (allowlists, resolved host names, resolvers);
/// read by the network hooks.
#[map]
pub static NET_ALLOW: LpmTrie<NetKey, u32> = LpmTrie::with_max_entries(MAX_NET_RULES, 0);

/// Sockets an agent accepted (inbound connections), keyed by `struct socket` address, with the
/// agent and the socket's inode number: replies on them are not outbound traffic. Written by
/// `socket_accept` (for agents only), read by `socket_sendmsg` and `file_permission`, which
/// take an entry only for the very socket it was made for (same inode number), so an entry
/// left behind by a freed socket never covers another that reuses its memory. LRU, so it never
/// fails to record; an evicted entry only means that socket's peer is checked like an outbound
/// one. Nothing removes the entry of a freed socket (that would cost every socket's creation a
/// program run, agent or not): the inode check makes it harmless, and, never touched again, it
/// is among the first the LRU evicts. The same holds for `UNIX_SERVERS` and `UNIX_CLIENTS`.
#[map]
pub static INBOUND_SOCKETS: LruHashMap<u64, InboundSocket> =
    LruHashMap::with_max_entries(MAX_INBOUND_SOCKETS, 0);

/// Unix sockets an agent bound or made listen, keyed by `struct socket` address, with the agent
/// and the socket's inode number: their servers are the agent's own, which its processes may
/// reach. Written by `socket_bind` and `socket_listen` (for agents only); read by the unix
/// hooks, which take an entry only for the very socket it was made for. LRU, so recording never
/// fails; an evicted entry only means the server is judged like anyone's (refused).
#[map]
pub static UNIX_SERVERS: LruHashMap<u64, InboundSocket> =
    LruHashMap::with_max_entries(MAX_UNIX_SERVERS, 0);

/// Unix sockets an agent connected to a server it could reach, or sent from under a grant,
/// keyed by `struct socket` address: later sends on them need no second judgement while the
/// grant (if any) lasts. Written by the unix hooks; read by `socket_sendmsg`, `file_permission`
/// and `unix_may_send`; cleared of a revoked grant's sockets by the daemon. LRU; an evicted
/// entry only means the socket's sends are judged again.
#[map]
pub static UNIX_CLIENTS: LruHashMap<u64, UnixClient> =
    LruHashMap::with_max_entries(MAX_UNIX_CLIENTS, 0);

/// Current grants on file objects and unix socket servers: (agent, device, inode), an abstract
/// socket name under `ABSTRACT_DEV` with its hash. Written by the daemon (approve, grant,
/// revoke); single-use grants are spent by the hooks that use them. Read by the file hooks,
/// only for files that are protected from the agent, and by the unix hooks, only for servers
/// the agent may not reach otherwise.
#[map]
pub static FILE_GRANTS: HashMap<InodeRuleKey, Grant> =
    HashMap::with_max_entries(MAX_FILE_GRANTS, 0);

/// Current grants on network peers: (agent, port, address), exact. Written by the daemon;
/// single-use grants are deleted by the network hooks when used. Read by the network hooks,
/// only for peers that are not on the agent's allowlist.
#[map]
pub static PEER_GRANTS: HashMap<NetKey, Grant> = HashMap::with_max_entries(MAX_PEER_GRANTS, 0);

/// The unspent use of each single-use grant (grant id → 0). A single-use grant may cover
/// several keys (a host's addresses); deleting its one token is what spends it, and the map's
/// bucket lock lets exactly one of several racing operations delete it. Written by the daemon;
/// deleted by the hook that spends it.
#[map]
pub static ONCE_TOKENS: HashMap<u32, u32> = HashMap::with_max_entries(MAX_ONCE_TOKENS, 0);

/// Files opened under a grant, keyed by `struct file` address: reads and mappings through them
/// are allowed while the grant lasts. Written by `file_open`; read by `file_permission` and
/// `mmap_file`; cleared of a revoked grant's files by the daemon. LRU, so recording never
/// fails; an evicted entry only means reads through that descriptor are refused again.
#[map]
pub static GRANTED_FILES: LruHashMap<u64, GrantedFile> =
    LruHashMap::with_max_entries(MAX_GRANTED_FILES, 0);

/// Sockets connected under a grant, keyed by `struct socket` address: sends to that peer are
/// allowed while the grant lasts. Written by `socket_connect`; read by `socket_sendmsg`;
/// cleared of a revoked grant's sockets by the daemon. LRU, like `GRANTED_FILES`.
#[map]
pub static GRANTED_SOCKETS: LruHashMap<u64, GrantedSocket> =
    LruHashMap::with_max_entries(MAX_GRANTED_SOCKETS, 0);

/// Operations let through by a grant, by agent and `DenyKind`, like `DENIALS`.
#[map]
pub static GRANT_USES: PerCpuHashMap<CountKey, u64> =
    PerCpuHashMap::with_max_entries(MAX_COUNTERS, 0);

/// Mount namespaces agents made, by sequence number, with the agent (see `crate::mounts`).
/// Written by the `copy_mnt_ns` fexit program; read by the mount hooks. LRU, so recording
/// never fails; a forgotten namespace only means its agent's mount operations there are
/// refused. Entries of freed namespaces are never deleted: their numbers are never reused.
#[map]
pub static OWN_MOUNT_NAMESPACES: LruHashMap<u64, u32> =
    LruHashMap::with_max_entries(kya_common::mounts::MAX_OWN_MOUNT_NAMESPACES, 0);

/// Keys agents made, keyed by the address of the `struct key`, with the agent that made it (see
/// `crate::keys`). Written by `key_alloc` (for agents only), deleted by the `security_key_free`
/// fexit before the memory can carry another key; read by `key_permission`. Not LRU: an entry evicted would
/// leave the agent's own key refused to it, so a key that finds no room is not made at all.
#[map]
pub static AGENT_KEYS: HashMap<u64, u32> =
    HashMap::with_max_entries(kya_common::keys::MAX_AGENT_KEYS, 0);

/// Allowed verdicts of the file hooks, by (dentry, agent), with the stamp they hold for (see
/// `crate::verdicts`). Written and read by `file_open`, `file_permission` and `mmap_file`, for
/// agents only, and only for verdicts no rule and no grant decided. LRU: a forgotten verdict
/// is a miss, and the next check is a full one.
#[map]
pub static CLEAR_VERDICTS: LruHashMap<
    kya_common::verdict::VerdictKey,
    kya_common::verdict::ClearVerdict,
> = LruHashMap::with_max_entries(kya_common::verdict::MAX_CLEAR_VERDICTS, 0);

/// The rule maps' generation (one entry), bumped by the daemon after every change to
/// `PROTECTED_INODES` or `PROTECTED_NAMES`; read by the file hooks before a check, so that a
/// verdict reached while the rules changed is stamped with the old generation (stale, never
/// wrong).
#[map]
pub static RULES_GENERATION: Array<u32> = Array::with_max_entries(1, 0);

/// Per-CPU room for one key and value of `CLEAR_VERDICTS` (the file hooks have no stack to
/// spare on 6.1). Used by `crate::verdicts` within one program run.
#[map]
pub static VERDICT_SCRATCH: PerCpuArray<kya_common::verdict::VerdictScratch> =
    PerCpuArray::with_max_entries(1, 0);
