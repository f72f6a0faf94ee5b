//! The daemon's Prometheus metrics: the metric families, their bounded label sets, and the
//! HTTP endpoint ([`server`]) that exposes them.
//!
//! Every label value comes from a closed set fixed when [`Metrics`] is built: agent names and
//! approvers from the config, denial kinds from [`DenyKind`], map names from
//! [`kya_common::maps`], hook names from [`LSM_HOOKS`]. Never a pid, a path or an address, so the
//! number of series cannot grow with what agents do. An update naming a value outside these
//! sets is dropped (and logged at debug level) rather than creating a new series.
//!
//! The kernel counts denials and grant uses itself, whether or not their events reach the
//! daemon (a full ring buffer loses events, never counts). So counters are set from the
//! kernel's absolute totals ([`Metrics::set_denied_total`] and friends), not incremented per
//! event.
pub mod server;
#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Mutex, PoisonError, RwLock},
};

use kya_common::{event::DenyKind, maps, programs::LSM_HOOKS};
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

pub use self::server::{parse_listen, serve};
use crate::{config::Config, events::kind_name};

/// Where the daemon serves `/metrics` unless `--metrics` says otherwise: loopback only, on the
/// port registered for Prometheus exporters of this kind.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

/// The user name root's approvals are counted under. Root may always approve (the daemon
/// decides by uid 0), so callers pass this name for uid 0 whatever the user database calls it.
pub const ROOT_APPROVER: &str = "root";

/// The `approver` label of an approval by a user who is neither root nor listed in the agent's
/// `approvers`. The daemon refuses such approvals, so a sample here means a bug; the value is
/// not a valid user name, so it cannot collide with one.
pub const UNLISTED_APPROVER: &str = "(unlisted)";

/// The kernel maps whose fill level is exposed, with their capacity (`max_entries`).
pub const MAP_CAPACITIES: &[(&str, u32)] = &[
    (maps::TASK_TAGS, maps::MAX_TAGGED_TASKS),
    (maps::EXE_RULES, maps::MAX_EXE_RULES),
    (maps::UID_RULES, maps::MAX_UID_RULES),
    (maps::CGROUP_RULES, maps::MAX_CGROUP_RULES),
    (maps::ADOPT_REQUESTS, maps::MAX_ADOPT_REQUESTS),
    (maps::PROTECTED_INODES, maps::MAX_PROTECTED_INODES),
    (maps::PROTECTED_NAMES, maps::MAX_PROTECTED_NAMES),
    (maps::NET_ALLOW, maps::MAX_NET_RULES),
    (maps::INBOUND_SOCKETS, maps::MAX_INBOUND_SOCKETS),
    (maps::UNIX_SERVERS, maps::MAX_UNIX_SERVERS),
    (maps::UNIX_CLIENTS, maps::MAX_UNIX_CLIENTS),
    (maps::FILE_GRANTS, maps::MAX_FILE_GRANTS),
    (maps::PEER_GRANTS, maps::MAX_PEER_GRANTS),
    (maps::ONCE_TOKENS, maps::MAX_ONCE_TOKENS),
    (maps::GRANTED_FILES, maps::MAX_GRANTED_FILES),
    (maps::GRANTED_SOCKETS, maps::MAX_GRANTED_SOCKETS),
    (
        kya_common::mounts::OWN_MOUNT_NAMESPACES,
        kya_common::mounts::MAX_OWN_MOUNT_NAMESPACES,
    ),
    (
        kya_common::keys::AGENT_KEYS,
        kya_common::keys::MAX_AGENT_KEYS,
    ),
    (maps::DENIALS, maps::MAX_COUNTERS),
    (maps::GRANT_USES, maps::MAX_COUNTERS),
    (maps::EVENT_BUDGETS, maps::MAX_EVENT_BUDGETS),
];

/// Where events were lost on their way from the kernel to `kya events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossStage {
    /// The agent had used up its event budget in the kernel (counted in `EVENTS_LOST`): one
    /// agent's flood cannot crowd out the events of others.
    AgentBudget,
    /// The kernel's `EVENTS` ring buffer was full (counted in `EVENTS_LOST`).
    KernelRingBuffer,
    /// The daemon's queue between the ring buffer reader and the event log was full.
    DaemonQueue,
}

impl LossStage {
    pub const ALL: [Self; 3] = [Self::AgentBudget, Self::KernelRingBuffer, Self::DaemonQueue];

    /// The `stage` label value.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::AgentBudget => "agent_budget",
            Self::KernelRingBuffer => "kernel_ring_buffer",
            Self::DaemonQueue => "daemon_queue",
        }
    }
}

/// Where an internal error happened: the kernel programs' counters (`TAG_ERRORS`, indexed by
/// `kya_common::maps::tag_error`) and the daemon's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InternalError {
    /// A tagged task's child could not be recorded; the fork was refused.
    ForkInsert,
    /// A matching exec could not be recorded; the exec was refused.
    ExecInsert,
    /// A uid change to an agent's uid could not be recorded; the change was refused.
    SetuidInsert,
    /// A kernel structure could not be read while matching an exec or uid change; refused
    /// where a rule of that kind exists.
    KernelRead,
    /// A task that entered an agent's cgroup could not be recorded (a tracepoint cannot refuse;
    /// the daemon's adoption catches it up).
    CgroupInsert,
    /// A denial or grant use had no counter (the operation's outcome was unaffected).
    Uncounted,
    /// A key an agent made could not be recorded; its creation was refused.
    KeyInsert,
    /// The file watcher could not read changes or put new tables in force; it retries.
    FileWatch,
}

impl InternalError {
    /// The kernel's counters, in `TAG_ERRORS` order.
    pub const KERNEL: [Self; maps::tag_error::COUNT as usize] = [
        Self::ForkInsert,
        Self::ExecInsert,
        Self::SetuidInsert,
        Self::KernelRead,
        Self::CgroupInsert,
        Self::Uncounted,
        Self::KeyInsert,
    ];

    /// Every kind: the kernel's, then the daemon's own.
    pub fn all() -> impl Iterator<Item = Self> {
        Self::KERNEL.into_iter().chain([Self::FileWatch])
    }

    /// The `error` label value.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::ForkInsert => "fork_insert",
            Self::ExecInsert => "exec_insert",
            Self::SetuidInsert => "setuid_insert",
            Self::KernelRead => "kernel_read",
            Self::CgroupInsert => "cgroup_insert",
            Self::Uncounted => "uncounted",
            Self::KeyInsert => "key_insert",
            Self::FileWatch => "file_watch",
        }
    }
}

/// Every kind of denial, in kernel order; each is one `kind` label value.
pub fn deny_kinds() -> impl Iterator<Item = DenyKind> {
    (0..maps::DENY_KINDS).filter_map(|value| DenyKind::try_from(value).ok())
}

/// One configured agent as the metrics see it: its name and who may approve for it.
#[derive(Clone, Copy, Debug)]
pub struct AgentLabels<'a> {
    pub name: &'a str,
    /// The config's `approvers` for the agent; [`ROOT_APPROVER`] is added.
    pub approvers: &'a [String],
}

/// The `reason` labels of `kya_agent_contained`, as [`crate::accounts::Gone::label`] gives them.
pub const CONTAINMENT_REASONS: [&str; 3] = ["owner_missing", "owner_locked", "owner_expired"];

/// The metric families, in a private registry. Shared as `Arc<Metrics>`; every method takes
/// `&self`.
pub struct Metrics {
    registry: Registry,
    denied: IntCounterVec,
    allowed_by_grant: IntCounterVec,
    grants_active: IntGaugeVec,
    pending_requests: IntGauge,
    approvals: IntCounterVec,
    tagged_processes: IntGaugeVec,
    contained: IntGaugeVec,
    approver_gone: IntGaugeVec,
    events_lost: IntCounterVec,
    map_entries: IntGaugeVec,
    map_capacity: IntGaugeVec,
    enforcement_active: IntGaugeVec,
    internal_errors: IntCounterVec,
    /// Agent name → the user names counted as themselves in `approver`.
    agents: RwLock<BTreeMap<String, BTreeSet<String>>>,
    /// Serialises read-compare-increment in [`Self::advance`], so two callers setting the same
    /// total cannot both add the difference.
    advancing: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("agents", &self.agents)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Registers every family, and every series of the configured agents, kinds, stages, maps
    /// and hooks at zero, so that dashboards show zeros rather than missing series and
    /// `increase()` sees the first event. Map capacities and `kya_build_info` are set here;
    /// `kya_enforcement_active` starts at 0 for every hook until the daemon reports it attached.
    #[must_use]
    pub fn new(agents: &[AgentLabels<'_>]) -> Self {
        let registry = Registry::new();
        let metrics = Self {
            denied: counter_vec(
                &registry,
                "kya_denied_total",
                "Operations of agents refused, by agent and kind, as counted in the kernel \
                 (including denials whose events were lost).",
                &["agent", "kind"],
            ),
            allowed_by_grant: counter_vec(
                &registry,
                "kya_allowed_by_grant_total",
                "Operations of agents that would have been refused but were let through by a \
                 grant, by agent and kind, as counted in the kernel.",
                &["agent", "kind"],
            ),
            grants_active: gauge_vec(
                &registry,
                "kya_grants_active",
                "Grants currently in force, by agent.",
                &["agent"],
            ),
            pending_requests: {
                let gauge = IntGauge::with_opts(Opts::new(
                    "kya_pending_requests",
                    "Access requests waiting for a human to approve or deny them.",
                ))
                .expect("a valid metric definition");
                register(&registry, gauge.clone());
                gauge
            },
            approvals: counter_vec(
                &registry,
                "kya_approvals_total",
                "Access requests approved, by agent and approving user (root or one of the \
                 agent's configured approvers; nobody else can approve).",
                &["agent", "approver"],
            ),
            tagged_processes: gauge_vec(
                &registry,
                "kya_tagged_processes",
                "Processes currently tagged as the agent.",
                &["agent"],
            ),
            contained: gauge_vec(
                &registry,
                "kya_agent_contained",
                "1 while the agent is contained because its owner's account is gone (reason \
                 owner_missing, owner_locked or owner_expired): its grants were revoked, its \
                 allowlists are suspended, requests for it are refused.",
                &["agent", "reason"],
            ),
            approver_gone: gauge_vec(
                &registry,
                "kya_approver_gone",
                "1 while an approver the config lists for the agent has an account that is gone \
                 (removed, locked or expired): their grants were revoked and they can approve \
                 nothing.",
                &["agent", "approver"],
            ),
            events_lost: counter_vec(
                &registry,
                "kya_events_lost_total",
                "Denial events lost before reaching the event log, by stage (the denials \
                 themselves still happened and are counted in kya_denied_total).",
                &["stage"],
            ),
            map_entries: gauge_vec(
                &registry,
                "kya_map_entries",
                "Entries in a kernel map.",
                &["map"],
            ),
            map_capacity: gauge_vec(
                &registry,
                "kya_map_capacity",
                "Capacity (max_entries) of a kernel map.",
                &["map"],
            ),
            enforcement_active: gauge_vec(
                &registry,
                "kya_enforcement_active",
                "1 while the BPF LSM program of this hook is attached and enforcing, 0 otherwise.",
                &["hook"],
            ),
            internal_errors: counter_vec(
                &registry,
                "kya_internal_errors_total",
                "Internal errors, by where they happened: the kernel programs' own (each \
                 refused the operation or, where it could not, is named in the README) and the \
                 daemon's file watcher (which retries and resolves again).",
                &["error"],
            ),
            agents: RwLock::new(BTreeMap::new()),
            advancing: Mutex::new(()),
            registry,
        };

        metrics.register_series();
        metrics.add_agents(agents);
        metrics
    }

    /// Adds the series of `agents` (at zero) and their approvers to the label sets; names
    /// already known gain any new approvers. A config reload calls this with the new config's
    /// agents; the series of agents it dropped stay, as counters never disappear.
    pub fn add_agents(&self, agents: &[AgentLabels<'_>]) {
        let mut known = self.agents.write().unwrap_or_else(PoisonError::into_inner);
        for agent in agents {
            let name = agent.name;
            if !known.contains_key(name) {
                for kind in deny_kinds() {
                    let kind = kind_name(kind);
                    self.denied.with_label_values(&[name, &kind]);
                    self.allowed_by_grant.with_label_values(&[name, &kind]);
                }
                self.grants_active.with_label_values(&[name]).set(0);
                self.tagged_processes.with_label_values(&[name]).set(0);
                for reason in CONTAINMENT_REASONS {
                    self.contained.with_label_values(&[name, reason]).set(0);
                }
            }
            let approvers = known.entry(name.to_owned()).or_default();
            for approver in agent
                .approvers
                .iter()
                .map(String::as_str)
                .chain([ROOT_APPROVER])
            {
                if approvers.insert(approver.to_owned()) {
                    self.approvals.with_label_values(&[name, approver]);
                    if approver != ROOT_APPROVER {
                        self.approver_gone
                            .with_label_values(&[name, approver])
                            .set(0);
                    }
                }
            }
        }
    }

    /// Adds the agents of `config` (see [`Self::add_agents`]).
    pub fn add_config(&self, config: &Config) {
        self.add_agents(&agent_labels(config));
    }

    /// The metrics of the agents in `config`, with their approvers.
    #[must_use]
    pub fn for_config(config: &Config) -> Self {
        Self::new(&agent_labels(config))
    }

    /// Advances `kya_denied_total{agent,kind}` to the kernel's running total. A total below the
    /// current value (a kernel counter that restarted) is ignored: counters never go down.
    pub fn set_denied_total(&self, agent: &str, kind: DenyKind, total: u64) {
        if self.knows_agent(agent, "kya_denied_total") {
            self.advance(&self.denied, &[agent, &kind_name(kind)], total);
        }
    }

    /// Advances `kya_allowed_by_grant_total{agent,kind}` to the kernel's running total.
    pub fn set_allowed_by_grant_total(&self, agent: &str, kind: DenyKind, total: u64) {
        if self.knows_agent(agent, "kya_allowed_by_grant_total") {
            self.advance(&self.allowed_by_grant, &[agent, &kind_name(kind)], total);
        }
    }

    /// Advances `kya_events_lost_total{stage}` to the running total of that stage.
    pub fn set_events_lost_total(&self, stage: LossStage, total: u64) {
        self.advance(&self.events_lost, &[stage.label()], total);
    }

    /// Counts one approval of an access request of `agent` by `approver` (pass
    /// [`ROOT_APPROVER`] for uid 0). Only root and the agent's configured approvers can
    /// approve, which bounds the label's values; any other name is counted under
    /// [`UNLISTED_APPROVER`].
    pub fn record_approval(&self, agent: &str, approver: &str) {
        let known = self.agents.read().unwrap_or_else(PoisonError::into_inner);
        let Some(approvers) = known.get(agent) else {
            tracing::debug!(
                agent,
                metric = "kya_approvals_total",
                "agent not configured"
            );
            return;
        };
        let approver = if approvers.contains(approver) {
            approver
        } else {
            tracing::warn!(agent, approver, "approval by a user who is not an approver");
            UNLISTED_APPROVER
        };
        self.approvals.with_label_values(&[agent, approver]).inc();
    }

    /// Sets `kya_grants_active{agent}`.
    pub fn set_grants_active(&self, agent: &str, grants: u64) {
        if self.knows_agent(agent, "kya_grants_active") {
            self.grants_active
                .with_label_values(&[agent])
                .set(saturating_i64(grants));
        }
    }

    /// Sets `kya_pending_requests`.
    pub fn set_pending_requests(&self, requests: u64) {
        self.pending_requests.set(saturating_i64(requests));
    }

    /// Sets `kya_tagged_processes{agent}`.
    pub fn set_tagged_processes(&self, agent: &str, processes: u64) {
        if self.knows_agent(agent, "kya_tagged_processes") {
            self.tagged_processes
                .with_label_values(&[agent])
                .set(saturating_i64(processes));
        }
    }

    /// Sets `kya_agent_contained{agent,reason}`: 1 for the reason of each agent in
    /// `contained` (agent name → reason label), 0 for every other configured series.
    pub fn set_contained(&self, contained: &BTreeMap<String, &'static str>) {
        let known = self.agents.read().unwrap_or_else(PoisonError::into_inner);
        for agent in known.keys() {
            for reason in CONTAINMENT_REASONS {
                let on = contained.get(agent) == Some(&reason);
                self.contained
                    .with_label_values(&[agent.as_str(), reason])
                    .set(i64::from(on));
            }
        }
    }

    /// Sets `kya_approver_gone{agent,approver}` for an approver the config lists for `agent`.
    pub fn set_approver_gone(&self, agent: &str, approver: &str, gone: bool) {
        let listed = self
            .agents
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(agent)
            .is_some_and(|approvers| approvers.contains(approver));
        if listed && approver != ROOT_APPROVER {
            self.approver_gone
                .with_label_values(&[agent, approver])
                .set(i64::from(gone));
        }
    }

    /// Sets `kya_map_entries{map}`; `map` is one of the names in [`MAP_CAPACITIES`].
    pub fn set_map_entries(&self, map: &str, entries: u64) {
        if MAP_CAPACITIES.iter().any(|&(name, _)| name == map) {
            self.map_entries
                .with_label_values(&[map])
                .set(saturating_i64(entries));
        } else {
            tracing::debug!(
                map,
                metric = "kya_map_entries",
                "map without a capacity entry"
            );
        }
    }

    /// Sets `kya_enforcement_active{hook}`; `hook` is one of [`LSM_HOOKS`].
    pub fn set_enforcement_active(&self, hook: &str, active: bool) {
        if LSM_HOOKS.iter().any(|known| known.name == hook) {
            self.enforcement_active
                .with_label_values(&[hook])
                .set(i64::from(active));
        } else {
            tracing::debug!(hook, metric = "kya_enforcement_active", "not an LSM hook");
        }
    }

    /// Drops `kya_enforcement_active{hook}` for an optional hook this kernel lacks: nothing of
    /// kya is off there (an older hook covers the same operations), so no series may read 0
    /// and wake the "enforcement inactive" alert.
    pub fn forget_enforcement(&self, hook: &str) {
        let _ = self.enforcement_active.remove_label_values(&[hook]);
    }

    /// Sets the kernel's count of internal error `error`, a total kept in the kernel.
    pub fn set_internal_errors_total(&self, error: InternalError, total: u64) {
        self.advance(&self.internal_errors, &[error.label()], total);
    }

    /// Counts one internal error of the daemon's own.
    pub fn count_internal_error(&self, error: InternalError) {
        self.internal_errors
            .with_label_values(&[error.label()])
            .inc();
    }

    /// Every family in the Prometheus text exposition format, version 0.0.4.
    #[must_use]
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .expect("the text encoder only fails on invalid families, which are never registered")
    }

    /// Sets `kya_build_info` and creates every series that does not name an agent.
    fn register_series(&self) {
        let build_info = gauge_vec(
            &self.registry,
            "kya_build_info",
            "Always 1; the version label says which kya-agent is running.",
            &["version"],
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        self.pending_requests.set(0);
        for stage in LossStage::ALL {
            self.events_lost.with_label_values(&[stage.label()]);
        }
        for &(map, capacity) in MAP_CAPACITIES {
            self.map_entries.with_label_values(&[map]).set(0);
            self.map_capacity
                .with_label_values(&[map])
                .set(i64::from(capacity));
        }
        for hook in LSM_HOOKS.iter().map(|hook| hook.name) {
            self.enforcement_active.with_label_values(&[hook]).set(0);
        }
        for error in InternalError::all() {
            self.internal_errors.with_label_values(&[error.label()]);
        }
    }

    fn knows_agent(&self, agent: &str, metric: &'static str) -> bool {
        let known = self
            .agents
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(agent);
        if !known {
            tracing::debug!(agent, metric, "agent not configured; update dropped");
        }
        known
    }

    fn advance(&self, family: &IntCounterVec, labels: &[&str], total: u64) {
        let _serialised = self
            .advancing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let counter = family.with_label_values(labels);
        let current = counter.get();
        if total > current {
            counter.inc_by(total - current);
        }
    }
}

fn agent_labels(config: &Config) -> Vec<AgentLabels<'_>> {
    config
        .agents()
        .iter()
        .map(|agent| AgentLabels {
            name: agent.name(),
            approvers: agent.approvers(),
        })
        .collect()
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn register(registry: &Registry, collector: impl prometheus::core::Collector + 'static) {
    registry
        .register(Box::new(collector))
        .expect("each family is registered once, under a valid name");
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let family = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid definition");
    register(registry, family.clone());
    family
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let family = IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid definition");
    register(registry, family.clone());
    family
}
