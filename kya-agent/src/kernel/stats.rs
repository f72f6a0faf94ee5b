//! What the kernel side counts and holds, read for the daemon's metrics.
use std::collections::HashMap as StdHashMap;

use aya::maps::{HashMap, LpmTrie, MapData, PerCpuHashMap};
use kya_common::{
    grant::{Grant, GrantedFile, GrantedSocket},
    maps::{self as map_names, CountKey, EventBudget},
    net::NetKey,
    protect::{InodeRuleKey, NameRuleKey, ProtectRule},
    tag::{InodeKey, TaskTag},
};

use super::{Kernel, KernelError};

/// How full one kernel map is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapFill {
    pub name: &'static str,
    pub entries: u64,
    pub capacity: u32,
}

/// Events the kernel did not hand to the daemon, by where it lost them (their denials were
/// refused and counted all the same).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventsLost {
    /// The ring buffer was full.
    pub ring_buffer: u64,
    /// The agent had used up its event budget for the window.
    pub agent_budget: u64,
}

impl EventsLost {
    /// Both stages together.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.ring_buffer.saturating_add(self.agent_budget)
    }
}

/// Everything the metrics need from the kernel, read in one go.
#[derive(Debug, Clone, Default)]
pub struct KernelStats {
    pub denials: StdHashMap<CountKey, u64>,
    pub grant_uses: StdHashMap<CountKey, u64>,
    /// Events the kernel did not hand over.
    pub events_lost: EventsLost,
    /// Tagged processes (not threads) per agent id.
    pub tagged_processes: StdHashMap<u32, u64>,
    pub maps: Vec<MapFill>,
    /// The kernel programs' internal error counts, indexed by `kya_common::maps::tag_error`.
    pub errors: Vec<u64>,
}

impl Kernel {
    /// Reads every count and map size.
    pub fn stats(&mut self) -> Result<KernelStats, KernelError> {
        let mut processes: StdHashMap<u32, std::collections::HashSet<u32>> = StdHashMap::new();
        for record in self.tagged_tasks()? {
            processes
                .entry(record.tag.agent)
                .or_default()
                .insert(record.tgid);
        }
        Ok(KernelStats {
            denials: self.denial_counts()?,
            grant_uses: self.grant_use_counts()?,
            events_lost: self.events_lost()?,
            tagged_processes: processes
                .into_iter()
                .map(|(agent, tgids)| (agent, tgids.len() as u64))
                .collect(),
            maps: self.map_fill()?,
            errors: self.error_counts()?,
        })
    }

    /// Entries and capacity of every map that can fill up.
    pub fn map_fill(&self) -> Result<Vec<MapFill>, KernelError> {
        use map_names as m;
        Ok(vec![
            self.hash_fill::<u64, TaskTag>(m::TASK_TAGS, m::MAX_TAGGED_TASKS)?,
            self.hash_fill::<InodeKey, u32>(m::EXE_RULES, m::MAX_EXE_RULES)?,
            self.hash_fill::<u32, u32>(m::UID_RULES, m::MAX_UID_RULES)?,
            self.hash_fill::<u64, u32>(m::CGROUP_RULES, m::MAX_CGROUP_RULES)?,
            self.hash_fill::<u32, TaskTag>(m::ADOPT_REQUESTS, m::MAX_ADOPT_REQUESTS)?,
            self.hash_fill::<InodeRuleKey, ProtectRule>(
                m::PROTECTED_INODES,
                m::MAX_PROTECTED_INODES,
            )?,
            self.hash_fill::<NameRuleKey, ProtectRule>(m::PROTECTED_NAMES, m::MAX_PROTECTED_NAMES)?,
            self.trie_fill(m::NET_ALLOW, m::MAX_NET_RULES)?,
            self.hash_fill::<u64, kya_common::net::InboundSocket>(
                m::INBOUND_SOCKETS,
                m::MAX_INBOUND_SOCKETS,
            )?,
            self.hash_fill::<u64, kya_common::net::InboundSocket>(
                m::UNIX_SERVERS,
                m::MAX_UNIX_SERVERS,
            )?,
            self.hash_fill::<u64, kya_common::grant::UnixClient>(
                m::UNIX_CLIENTS,
                m::MAX_UNIX_CLIENTS,
            )?,
            self.hash_fill::<InodeRuleKey, Grant>(m::FILE_GRANTS, m::MAX_FILE_GRANTS)?,
            self.hash_fill::<NetKey, Grant>(m::PEER_GRANTS, m::MAX_PEER_GRANTS)?,
            self.hash_fill::<u32, u32>(m::ONCE_TOKENS, m::MAX_ONCE_TOKENS)?,
            self.hash_fill::<u64, GrantedFile>(m::GRANTED_FILES, m::MAX_GRANTED_FILES)?,
            self.hash_fill::<u64, GrantedSocket>(m::GRANTED_SOCKETS, m::MAX_GRANTED_SOCKETS)?,
            self.hash_fill::<u64, u32>(
                kya_common::mounts::OWN_MOUNT_NAMESPACES,
                kya_common::mounts::MAX_OWN_MOUNT_NAMESPACES,
            )?,
            self.hash_fill::<u64, u32>(
                kya_common::keys::AGENT_KEYS,
                kya_common::keys::MAX_AGENT_KEYS,
            )?,
            self.counter_fill(m::DENIALS)?,
            self.counter_fill(m::GRANT_USES)?,
            self.budget_fill()?,
        ])
    }

    fn hash_fill<K: aya::Pod, V: aya::Pod>(
        &self,
        name: &'static str,
        capacity: u32,
    ) -> Result<MapFill, KernelError> {
        let map = self.ebpf.map(name).ok_or(KernelError::MissingMap(name))?;
        let map: HashMap<&MapData, K, V> =
            HashMap::try_from(map).map_err(KernelError::map(name))?;
        Ok(MapFill {
            name,
            entries: map.keys().flatten().count() as u64,
            capacity,
        })
    }

    fn trie_fill(&self, name: &'static str, capacity: u32) -> Result<MapFill, KernelError> {
        let map = self.ebpf.map(name).ok_or(KernelError::MissingMap(name))?;
        let map: LpmTrie<&MapData, NetKey, u32> =
            LpmTrie::try_from(map).map_err(KernelError::map(name))?;
        Ok(MapFill {
            name,
            entries: map.keys().flatten().count() as u64,
            capacity,
        })
    }

    fn budget_fill(&self) -> Result<MapFill, KernelError> {
        let name = map_names::EVENT_BUDGETS;
        let map = self.ebpf.map(name).ok_or(KernelError::MissingMap(name))?;
        let map: PerCpuHashMap<&MapData, u32, EventBudget> =
            PerCpuHashMap::try_from(map).map_err(KernelError::map(name))?;
        Ok(MapFill {
            name,
            entries: map.keys().flatten().count() as u64,
            capacity: map_names::MAX_EVENT_BUDGETS,
        })
    }

    fn counter_fill(&self, name: &'static str) -> Result<MapFill, KernelError> {
        let map = self.ebpf.map(name).ok_or(KernelError::MissingMap(name))?;
        let map: PerCpuHashMap<&MapData, CountKey, u64> =
            PerCpuHashMap::try_from(map).map_err(KernelError::map(name))?;
        Ok(MapFill {
            name,
            entries: map.keys().flatten().count() as u64,
            capacity: map_names::MAX_COUNTERS,
        })
    }
}
