//! Owns the loaded kernel programs: loading them with this kernel's struct offsets, attaching
//! every hook, and the typed access to their maps that the rest of the daemon uses.
mod apply_policy;
mod error;
mod iter;
mod lsm_load;
#[cfg(test)]
mod object_names;
mod offsets;
pub mod pins;
mod stats;
pub mod support;
mod symbols;

use std::{
    collections::{HashMap as StdHashMap, HashSet},
    path::PathBuf,
};

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{
        Array, HashMap, MapData, PerCpuArray, PerCpuHashMap, PerCpuValues, RingBuf,
        lpm_trie::{Key, LpmTrie},
    },
    programs::{
        BtfTracePoint, FExit, Iter, Lsm,
        links::{FdLink, PinnedLink},
    },
};
pub use error::KernelError;
use kya_common::{
    grant::{Grant, GrantedFile, GrantedSocket, UnixClient, flag as grant_flag},
    maps::{self as map_names, CountKey, EventBudget, event_loss, match_summary},
    net::NetKey,
    programs::{
        ADOPT_TASKS_ITER, BTF_TRACEPOINTS, FEXITS, KEY_FREE_FEXIT, LSM_HOOKS, TAGGED_TASKS_ITER,
    },
    protect::InodeRuleKey,
    tag::{TaggedTaskRecord, TaskTag},
    verdict,
};
pub use stats::{EventsLost, KernelStats, MapFill};

use self::pins::PinDirs;
use crate::{files::tables::FileTables, network::table::NetTable, tagging::rules::KernelRules};

/// Events one agent may send per budget window on each of this host's possible CPUs (the
/// kernel keeps the budget per CPU; see `kya_common::maps::AGENT_EVENT_BUDGET`).
fn event_budget_per_cpu() -> Result<u32, KernelError> {
    let cpus = aya::util::nr_cpus().map_err(|(_, error)| KernelError::Cpus(error))?;
    Ok(map_names::event_budget_per_cpu(
        u32::try_from(cpus).unwrap_or(u32::MAX),
    ))
}

/// The kernel object built from `kya-ebpf` by this crate's build script.
static KERNEL_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/kya"));

/// Unmaps the pages of the embedded kernel object, which only loading reads: they are part of
/// the executable's file mapping, so they stay resident after the load until unmapped. A later
/// read (a probe) maps them again from the file.
pub fn release_object_pages() {
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|size| usize::try_from(size).ok())
        .unwrap_or(4096);
    let start = KERNEL_OBJECT.as_ptr() as usize;
    let first = start.next_multiple_of(page);
    let end = (start + KERNEL_OBJECT.len()) / page * page;
    if end <= first {
        return;
    }
    let Some(address) = std::ptr::NonNull::new(first as *mut std::ffi::c_void) else {
        return;
    };
    // SAFETY: the range lies inside the object's read-only, file-backed pages, whole pages
    // only; MADV_DONTNEED on a private file mapping that was never written drops the pages, and
    // the next read faults them in from the file again: no content changes.
    let result = unsafe {
        nix::sys::mman::madvise(
            address,
            end - first,
            nix::sys::mman::MmapAdvise::MADV_DONTNEED,
        )
    };
    if let Err(error) = result {
        tracing::debug!(error = %error, "cannot release the kernel object's pages");
    }
}

/// The loaded and attached kernel programs. Dropping it detaches them unless they are pinned.
pub struct Kernel {
    ebpf: Ebpf,
    /// The LSM hooks with an attached program: all of `LSM_HOOKS` but the optional ones this
    /// kernel lacks.
    hooks: Vec<&'static str>,
    /// Held for as long as the daemon runs, so that removing a pin does not detach anything
    /// while it does.
    _links: Vec<Attached>,
}

/// How long the programs stay attached.
#[derive(Debug, Clone)]
pub enum Lifetime {
    /// Until this process drops them (`kya-agent probe`).
    Process,
    /// Until `kya-agent unload`: pinned under this bpffs directory.
    Pinned(PathBuf),
}

/// What a pinned start found and replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Takeover {
    /// Maps pinned by an earlier daemon were reused: tags, rules, grants and counts carried
    /// over.
    pub reused_maps: bool,
    /// Pins of earlier generations (links, and maps of another layout) removed.
    pub retired_pins: usize,
}

/// One attached program's link, held open (never read) so that it stays attached.
#[expect(dead_code, reason = "the links are held, not read")]
enum Attached {
    Process(FdLink),
    Pinned(PinnedLink),
}

/// One grant in kernel terms: the keys it covers (a file object, or a host's addresses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelGrant {
    pub grant: Grant,
    pub files: Vec<InodeRuleKey>,
    pub peers: Vec<NetKey>,
}

impl Kernel {
    /// Loads every program with offsets resolved from this kernel's BTF and attaches them.
    /// With `Lifetime::Pinned` the maps and links are pinned (see `pins`): enforcement outlives
    /// this process, and maps a previous daemon pinned are taken over. On any failure nothing
    /// new stays attached: the partly loaded object is dropped, and pins of an earlier daemon
    /// are left as they were.
    pub fn load(lifetime: &Lifetime) -> Result<(Self, Takeover), KernelError> {
        let btf = Btf::from_sys_fs().map_err(KernelError::Btf)?;
        let hooks =
            lsm_load::hooks_to_attach(LSM_HOOKS, |hook| lsm_load::kernel_has_hook(&btf, hook));
        let offsets = offsets::resolve(hooks.contains(&"key_permission"))?;
        let mut loader = EbpfLoader::new();
        loader.btf(Some(&btf));
        for (global, offset) in &offsets {
            loader.override_global(global, offset, true);
        }
        let event_budget = event_budget_per_cpu()?;
        loader.override_global(map_names::EVENT_BUDGET_GLOBAL, &event_budget, true);
        let rename_lock = symbols::rename_lock();
        loader.override_global(verdict::RENAME_LOCK_GLOBAL, &rename_lock, true);
        let pins = match lifetime {
            Lifetime::Process => None,
            Lifetime::Pinned(root) => Some(PinDirs::new(root)),
        };
        let mut takeover = Takeover::default();
        let map_paths: Vec<(&str, PathBuf)> = match &pins {
            Some(pins) => {
                takeover.reused_maps = pins.prepare().map_err(KernelError::Pins)?;
                map_names::LAYOUTS
                    .iter()
                    .map(|(name, ..)| (*name, pins.maps().join(name)))
                    .collect()
            }
            None => Vec::new(),
        };
        for (name, path) in &map_paths {
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader.load(KERNEL_OBJECT).map_err(KernelError::Load)?;
        for hook in LSM_HOOKS.iter().filter(|hook| !hooks.contains(&hook.name)) {
            tracing::warn!(
                hook = hook.name,
                "this kernel has no such LSM hook; running without it (optional)"
            );
        }
        lsm_load::load_all(&mut ebpf, &btf, &hooks)?;
        let mut links = Vec::new();
        for &hook in &hooks {
            let program: &mut Lsm = program_mut(&mut ebpf, hook)?;
            let link = program
                .attach()
                .and_then(|id| program.take_link(id))
                .map_err(|source| KernelError::program(hook, source))?;
            links.push((hook, FdLink::from(link)));
        }
        for &tracepoint in BTF_TRACEPOINTS {
            let program: &mut BtfTracePoint = program_mut(&mut ebpf, tracepoint)?;
            program
                .load(tracepoint, &btf)
                .map_err(|source| KernelError::program(tracepoint, source))?;
            let link = program
                .attach()
                .and_then(|id| program.take_link(id))
                .map_err(|source| KernelError::program(tracepoint, source))?;
            links.push((tracepoint, FdLink::from(link)));
        }
        links.extend(attach_fexits(&mut ebpf, &btf, &hooks)?);
        for name in [ADOPT_TASKS_ITER, TAGGED_TASKS_ITER] {
            let program: &mut Iter = program_mut(&mut ebpf, name)?;
            program
                .load("task", &btf)
                .map_err(|source| KernelError::program(name, source))?;
        }
        let links = match &pins {
            None => links
                .into_iter()
                .map(|(_, link)| Attached::Process(link))
                .collect(),
            Some(pins) => {
                let generation = pins.new_generation().map_err(KernelError::Pins)?;
                let mut pinned = Vec::with_capacity(links.len());
                for (name, link) in links {
                    pinned.push(Attached::Pinned(
                        link.pin(generation.join(name))
                            .map_err(|source| KernelError::PinLink { name, source })?,
                    ));
                }
                // Only now, with the new generation attached and pinned, do the old ones go.
                takeover.retired_pins = pins
                    .retire_all_but(&generation)
                    .map_err(KernelError::Pins)?;
                pinned
            }
        };
        Ok((
            Self {
                ebpf,
                hooks,
                _links: links,
            },
            takeover,
        ))
    }

    /// The LSM hooks this kernel enforces on: every hook of `LSM_HOOKS` but the optional ones
    /// it lacks.
    #[must_use]
    pub fn enforcing_hooks(&self) -> &[&'static str] {
        &self.hooks
    }

    /// Replaces the match rules with `rules`: new entries are written before stale ones are
    /// removed, so a rule present in both the old and new set never disappears in between.
    pub fn set_rules(&mut self, rules: &KernelRules) -> Result<(), KernelError> {
        let cgroups: StdHashMap<u64, u32> = rules
            .cgroup
            .iter()
            .map(|(&id, &(agent, _))| (id, agent))
            .collect();
        let summary = [
            (
                match_summary::CGROUP_DEPTH,
                rules
                    .cgroup
                    .values()
                    .map(|&(_, level)| level)
                    .max()
                    .unwrap_or(0),
            ),
            (
                match_summary::EXE_RULES,
                u32::try_from(rules.exe.len()).unwrap_or(u32::MAX),
            ),
            (
                match_summary::UID_RULES,
                u32::try_from(rules.uid.len()).unwrap_or(u32::MAX),
            ),
        ];
        // Raise before adding rules and lower after removing them, so no rule is ever deeper
        // than the walk that looks for it, nor present while its kind counts as absent.
        self.raise_match_summary(&summary)?;
        replace_entries(self.hash_map(map_names::EXE_RULES)?, &rules.exe)?;
        replace_entries(self.hash_map(map_names::UID_RULES)?, &rules.uid)?;
        replace_entries(self.hash_map(map_names::CGROUP_RULES)?, &cgroups)?;
        self.set_match_summary(&summary)
    }

    /// Raises each entry of `MATCH_SUMMARY` to at least its value in `summary`.
    fn raise_match_summary(&mut self, summary: &[(u32, u32)]) -> Result<(), KernelError> {
        let mut map: Array<&mut MapData, u32> = self.map(map_names::MATCH_SUMMARY)?;
        for &(index, value) in summary {
            let old = map
                .get(&index, 0)
                .map_err(KernelError::map(map_names::MATCH_SUMMARY))?;
            map.set(index, value.max(old), 0)
                .map_err(KernelError::map(map_names::MATCH_SUMMARY))?;
        }
        Ok(())
    }

    /// Sets each entry of `MATCH_SUMMARY` to its value in `summary`.
    fn set_match_summary(&mut self, summary: &[(u32, u32)]) -> Result<(), KernelError> {
        let mut map: Array<&mut MapData, u32> = self.map(map_names::MATCH_SUMMARY)?;
        for &(index, value) in summary {
            map.set(index, value, 0)
                .map_err(KernelError::map(map_names::MATCH_SUMMARY))?;
        }
        Ok(())
    }

    /// Replaces the file protection rules with `tables`, new entries first so that an object
    /// protected before and after is never unprotected in between.
    pub fn set_file_tables(&mut self, tables: &FileTables) -> Result<(), KernelError> {
        let replaced = replace_entries(self.hash_map(map_names::PROTECTED_INODES)?, &tables.inodes)
            .and_then(|()| {
                replace_entries(self.hash_map(map_names::PROTECTED_NAMES)?, &tables.names)
            });
        // Even after a failure part way: whatever changed makes remembered verdicts stale.
        self.bump_rules_generation()?;
        replaced
    }

    /// Makes every verdict the file hooks remembered stale (see `kya_common::verdict`): called
    /// after every change to `PROTECTED_INODES` or `PROTECTED_NAMES`, never before (a hook
    /// reads the generation before it checks, so a check that saw the old rules is stamped
    /// with the old generation).
    pub(crate) fn bump_rules_generation(&mut self) -> Result<(), KernelError> {
        let name = verdict::RULES_GENERATION;
        let mut map: Array<&mut MapData, u32> = self.map(name)?;
        let generation = map.get(&0, 0).map_err(KernelError::map(name))?;
        map.set(0, generation.wrapping_add(1), 0)
            .map_err(KernelError::map(name))
    }

    /// Replaces the network allowlist entries with `table`'s, new entries first so that a peer
    /// allowed before and after is never refused in between.
    pub fn set_net_table(&mut self, table: &NetTable) -> Result<(), KernelError> {
        self.insert_net_entries(table)?;
        self.remove_stale_net_entries(table)
    }

    /// Writes every allowlist entry of `table`.
    fn insert_net_entries(&mut self, table: &NetTable) -> Result<(), KernelError> {
        let name = map_names::NET_ALLOW;
        let mut trie: LpmTrie<&mut MapData, NetKey, u32> = self.map(name)?;
        for (&(prefix, key), rule) in &table.entries {
            trie.insert(&Key::new(prefix, key), rule, 0)
                .map_err(KernelError::map(name))?;
        }
        Ok(())
    }

    /// Removes every allowlist entry that `table` does not have.
    fn remove_stale_net_entries(&mut self, table: &NetTable) -> Result<(), KernelError> {
        let name = map_names::NET_ALLOW;
        let mut trie: LpmTrie<&mut MapData, NetKey, u32> = self.map(name)?;
        let stale: Vec<Key<NetKey>> = trie
            .keys()
            .filter_map(Result::ok)
            .filter(|key| !table.entries.contains_key(&(key.prefix_len(), key.data())))
            .collect();
        for key in stale {
            trie.remove(&key).map_err(KernelError::map(name))?;
        }
        Ok(())
    }

    /// Puts a grant in force. A single-use grant's token goes in first and its keys after, so
    /// no key is ever live without the token that spends it; a failure removes what was
    /// written.
    pub fn insert_grant(&mut self, entry: &KernelGrant) -> Result<(), KernelError> {
        let result = self.write_grant(entry);
        if result.is_err() {
            let _ = self.remove_grant(entry.grant.id, false);
        }
        result
    }

    fn write_grant(&mut self, entry: &KernelGrant) -> Result<(), KernelError> {
        if entry.grant.flags & grant_flag::ONCE != 0 {
            let mut tokens: HashMap<&mut MapData, u32, u32> =
                self.hash_map(map_names::ONCE_TOKENS)?;
            tokens
                .insert(entry.grant.id, 0, 0)
                .map_err(KernelError::map(map_names::ONCE_TOKENS))?;
        }
        let mut files: HashMap<&mut MapData, InodeRuleKey, Grant> =
            self.hash_map(map_names::FILE_GRANTS)?;
        for key in &entry.files {
            files
                .insert(key, entry.grant, 0)
                .map_err(KernelError::map(map_names::FILE_GRANTS))?;
        }
        let mut peers: HashMap<&mut MapData, NetKey, Grant> =
            self.hash_map(map_names::PEER_GRANTS)?;
        for key in &entry.peers {
            peers
                .insert(key, entry.grant, 0)
                .map_err(KernelError::map(map_names::PEER_GRANTS))?;
        }
        Ok(())
    }

    /// Ends grant `id` in the kernel at once: its token and keys, and (unless `keep_opened`,
    /// for a spent single-use grant whose one open file or connection stays usable until the
    /// grant's end) the files, sockets and unix clients opened under it.
    pub fn remove_grant(&mut self, id: u32, keep_opened: bool) -> Result<(), KernelError> {
        let mut tokens: HashMap<&mut MapData, u32, u32> = self.hash_map(map_names::ONCE_TOKENS)?;
        // A spent token is already gone.
        tolerate_missing(tokens.remove(&id)).map_err(KernelError::map(map_names::ONCE_TOKENS))?;
        remove_where::<InodeRuleKey, Grant>(self.hash_map(map_names::FILE_GRANTS)?, |grant| {
            grant.id == id
        })?;
        remove_where::<NetKey, Grant>(self.hash_map(map_names::PEER_GRANTS)?, |grant| {
            grant.id == id
        })?;
        if keep_opened {
            return Ok(());
        }
        remove_where::<u64, GrantedFile>(self.hash_map(map_names::GRANTED_FILES)?, |file| {
            file.grant == id
        })?;
        remove_where::<u64, GrantedSocket>(self.hash_map(map_names::GRANTED_SOCKETS)?, |socket| {
            socket.grant == id
        })?;
        remove_where::<u64, UnixClient>(self.hash_map(map_names::UNIX_CLIENTS)?, |client| {
            client.grant == id
        })
    }

    /// Ids of the grants that have keys in the kernel.
    pub fn grant_ids(&mut self) -> Result<HashSet<u32>, KernelError> {
        let files: HashMap<&mut MapData, InodeRuleKey, Grant> =
            self.hash_map(map_names::FILE_GRANTS)?;
        let mut ids: HashSet<u32> = files.iter().flatten().map(|(_, grant)| grant.id).collect();
        let peers: HashMap<&mut MapData, NetKey, Grant> = self.hash_map(map_names::PEER_GRANTS)?;
        ids.extend(peers.iter().flatten().map(|(_, grant)| grant.id));
        Ok(ids)
    }

    /// Forgets adoption requests a daemon that died mid-adoption may have left: a thread id in
    /// them may belong to another process by now.
    pub fn clear_adopt_requests(&mut self) -> Result<(), KernelError> {
        remove_where::<u32, TaskTag>(self.hash_map(map_names::ADOPT_REQUESTS)?, |_| true)
    }

    /// Ids of the single-use grants whose use is still unspent.
    pub fn unspent_once_grants(&mut self) -> Result<HashSet<u32>, KernelError> {
        let tokens: HashMap<&mut MapData, u32, u32> = self.hash_map(map_names::ONCE_TOKENS)?;
        Ok(tokens.keys().filter_map(Result::ok).collect())
    }

    /// Creates, at zero, every denial and grant-use counter of `agents` (and of
    /// `UNKNOWN_AGENT`) that does not exist yet; existing counters keep their counts.
    pub fn create_counters(&mut self, agents: &[u32]) -> Result<(), KernelError> {
        let cpus = aya::util::nr_cpus().map_err(|(_, error)| KernelError::Cpus(error))?;
        for name in [map_names::DENIALS, map_names::GRANT_USES] {
            let mut counters: PerCpuHashMap<&mut MapData, CountKey, u64> = self.map(name)?;
            for &agent in agents.iter().chain([&map_names::UNKNOWN_AGENT]) {
                for kind in 1..map_names::DENY_KINDS {
                    let key = CountKey { agent, kind };
                    if counters.get(&key, 0).is_ok() {
                        continue;
                    }
                    let zeros =
                        PerCpuValues::try_from(vec![0_u64; cpus]).map_err(KernelError::Cpus)?;
                    counters
                        .insert(key, zeros, 0)
                        .map_err(KernelError::map(name))?;
                }
            }
        }
        Ok(())
    }

    /// Creates, at zero, the event budget of every agent in `agents` (and of `UNKNOWN_AGENT`)
    /// that does not exist yet; existing budgets are left as they are.
    pub fn create_event_budgets(&mut self, agents: &[u32]) -> Result<(), KernelError> {
        let cpus = aya::util::nr_cpus().map_err(|(_, error)| KernelError::Cpus(error))?;
        let name = map_names::EVENT_BUDGETS;
        let mut budgets: PerCpuHashMap<&mut MapData, u32, EventBudget> = self.map(name)?;
        for &agent in agents.iter().chain([&map_names::UNKNOWN_AGENT]) {
            if budgets.get(&agent, 0).is_ok() {
                continue;
            }
            let zeros = PerCpuValues::try_from(vec![EventBudget::default(); cpus])
                .map_err(KernelError::Cpus)?;
            budgets
                .insert(agent, zeros, 0)
                .map_err(KernelError::map(name))?;
        }
        Ok(())
    }

    /// Denials counted in the kernel, by agent and kind, summed over CPUs.
    pub fn denial_counts(&self) -> Result<StdHashMap<CountKey, u64>, KernelError> {
        self.counter_sums(map_names::DENIALS)
    }

    /// Operations let through by grants, by agent and kind, summed over CPUs.
    pub fn grant_use_counts(&self) -> Result<StdHashMap<CountKey, u64>, KernelError> {
        self.counter_sums(map_names::GRANT_USES)
    }

    fn counter_sums(&self, name: &'static str) -> Result<StdHashMap<CountKey, u64>, KernelError> {
        let map = self.ebpf.map(name).ok_or(KernelError::MissingMap(name))?;
        let counters: PerCpuHashMap<&MapData, CountKey, u64> =
            PerCpuHashMap::try_from(map).map_err(KernelError::map(name))?;
        counters
            .iter()
            .map(|entry| {
                entry
                    .map(|(key, values)| (key, values.iter().sum()))
                    .map_err(KernelError::map(name))
            })
            .collect()
    }

    /// Takes the denial event ring buffer out, for the task that reads it.
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, KernelError> {
        let map = self
            .ebpf
            .take_map(map_names::EVENTS)
            .ok_or(KernelError::MissingMap(map_names::EVENTS))?;
        RingBuf::try_from(map).map_err(KernelError::map(map_names::EVENTS))
    }

    /// Events the kernel did not hand over, by where they were lost.
    pub fn events_lost(&self) -> Result<EventsLost, KernelError> {
        let sums = self.per_cpu_sums(map_names::EVENTS_LOST)?;
        let stage = |index: u32| sums.get(index as usize).copied().unwrap_or(0);
        Ok(EventsLost {
            ring_buffer: stage(event_loss::RING_BUFFER),
            agent_budget: stage(event_loss::AGENT_BUDGET),
        })
    }

    /// Tags the given threads (thread id → tag) unless they are tagged already.
    pub fn adopt(&mut self, requests: &StdHashMap<u32, TaskTag>) -> Result<(), KernelError> {
        for chunk in requests
            .iter()
            .collect::<Vec<_>>()
            .chunks(map_names::MAX_ADOPT_REQUESTS as usize)
        {
            let mut pending: HashMap<&mut MapData, u32, TaskTag> =
                self.hash_map(map_names::ADOPT_REQUESTS)?;
            for (tid, tag) in chunk {
                pending
                    .insert(*tid, *tag, 0)
                    .map_err(KernelError::map(map_names::ADOPT_REQUESTS))?;
            }
            let run = iter::run(&mut self.ebpf, ADOPT_TASKS_ITER);
            let mut pending: HashMap<&mut MapData, u32, TaskTag> =
                self.hash_map(map_names::ADOPT_REQUESTS)?;
            for (tid, _) in chunk {
                // Clear even when the run failed, so a stale request can never tag a later
                // thread that reuses the id.
                let _ = pending.remove(tid);
            }
            run?;
        }
        Ok(())
    }

    /// Every tagged task, as the kernel sees it now.
    pub fn tagged_tasks(&mut self) -> Result<Vec<TaggedTaskRecord>, KernelError> {
        let bytes = iter::run(&mut self.ebpf, TAGGED_TASKS_ITER)?;
        Ok(iter::records(&bytes))
    }

    /// Internal error counters of the kernel programs, summed over CPUs.
    pub fn error_counts(&self) -> Result<Vec<u64>, KernelError> {
        self.per_cpu_sums(map_names::TAG_ERRORS)
    }

    /// Every slot of a per-CPU counter array, summed over CPUs.
    fn per_cpu_sums(&self, name: &'static str) -> Result<Vec<u64>, KernelError> {
        let map = self.ebpf.map(name).ok_or(KernelError::MissingMap(name))?;
        let counters: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(map).map_err(KernelError::map(name))?;
        counters
            .iter()
            .map(|per_cpu| {
                per_cpu
                    .map(|values| values.iter().sum())
                    .map_err(KernelError::map(name))
            })
            .collect()
    }

    fn hash_map<K: aya::Pod, V: aya::Pod>(
        &mut self,
        name: &'static str,
    ) -> Result<HashMap<&mut MapData, K, V>, KernelError> {
        self.map(name)
    }

    fn map<'a, T>(&'a mut self, name: &'static str) -> Result<T, KernelError>
    where
        T: TryFrom<&'a mut aya::maps::Map, Error = aya::maps::MapError>,
    {
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or(KernelError::MissingMap(name))?;
        T::try_from(map).map_err(KernelError::map(name))
    }
}

/// Loads and attaches every `fexit` program of `FEXITS`, returning their links; the one that
/// forgets freed keys only with the key hooks (`hooks`, the LSM hooks attached): a kernel
/// without keys has no `security_key_free`.
fn attach_fexits(
    ebpf: &mut Ebpf,
    btf: &Btf,
    hooks: &[&'static str],
) -> Result<Vec<(&'static str, FdLink)>, KernelError> {
    let mut links = Vec::with_capacity(FEXITS.len());
    let with_keys = hooks.contains(&"key_permission");
    for &function in FEXITS {
        if function == KEY_FREE_FEXIT && !with_keys {
            continue;
        }
        let program: &mut FExit = program_mut(ebpf, function)?;
        program
            .load(function, btf)
            .map_err(|source| KernelError::program(function, source))?;
        tracing::debug!(
            program = function,
            verified_insns = program
                .info()
                .ok()
                .and_then(|info| info.verified_instruction_count()),
            "loaded"
        );
        let link = program
            .attach()
            .and_then(|id| program.take_link(id))
            .map_err(|source| KernelError::program(function, source))?;
        links.push((function, FdLink::from(link)));
    }
    Ok(links)
}

fn program_mut<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, KernelError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let program = ebpf
        .program_mut(name)
        .ok_or(KernelError::MissingProgram(name))?;
    program
        .try_into()
        .map_err(|source| KernelError::program(name, source))
}

/// Removes every entry of a kernel hash map whose value matches. (LRU maps read the same way.)
fn remove_where<K: aya::Pod, V: aya::Pod>(
    mut map: HashMap<&mut MapData, K, V>,
    matches: impl Fn(&V) -> bool,
) -> Result<(), KernelError> {
    let doomed: Vec<K> = map
        .iter()
        .filter_map(Result::ok)
        .filter(|(_, value)| matches(value))
        .map(|(key, _)| key)
        .collect();
    for key in doomed {
        // The kernel may have removed it meanwhile (an LRU eviction).
        tolerate_missing(map.remove(&key)).map_err(KernelError::map("grant map"))?;
    }
    Ok(())
}

/// A removal that found nothing to remove is a success.
fn tolerate_missing(result: Result<(), aya::maps::MapError>) -> Result<(), aya::maps::MapError> {
    match result {
        Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        Err(aya::maps::MapError::SyscallError(error))
            if error.io_error.raw_os_error() == Some(libc::ENOENT) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// Makes a kernel hash map hold exactly `wanted`.
fn replace_entries<K, V>(
    mut map: HashMap<&mut MapData, K, V>,
    wanted: &StdHashMap<K, V>,
) -> Result<(), KernelError>
where
    K: aya::Pod + Eq + std::hash::Hash,
    V: aya::Pod,
{
    insert_entries(&mut map, wanted)?;
    remove_stale_entries(&mut map, wanted)
}

/// Writes every entry of `wanted` into `map`, replacing values of keys already there.
fn insert_entries<K, V>(
    map: &mut HashMap<&mut MapData, K, V>,
    wanted: &StdHashMap<K, V>,
) -> Result<(), KernelError>
where
    K: aya::Pod + Eq + std::hash::Hash,
    V: aya::Pod,
{
    for (key, value) in wanted {
        map.insert(key, value, 0)
            .map_err(KernelError::map("rule map"))?;
    }
    Ok(())
}

/// Removes from `map` every key that `wanted` does not have.
fn remove_stale_entries<K, V>(
    map: &mut HashMap<&mut MapData, K, V>,
    wanted: &StdHashMap<K, V>,
) -> Result<(), KernelError>
where
    K: aya::Pod + Eq + std::hash::Hash,
    V: aya::Pod,
{
    let stale: Vec<K> = map
        .keys()
        .filter_map(Result::ok)
        .filter(|key| !wanted.contains_key(key))
        .collect();
    for key in stale {
        map.remove(&key).map_err(KernelError::map("rule map"))?;
    }
    Ok(())
}
