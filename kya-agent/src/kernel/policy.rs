//! Putting a whole config's policy in force: at start, over the maps an earlier daemon left, and
//! on every reload.
//!
//! The maps cannot all change in one instant, so the change is ordered to tighten first: new
//! protections and the removal of dropped allowlist entries take effect before new allowlist
//! entries and the removal of dropped protections. While it runs, nothing is allowed that the
//! old and the new policy both refuse, and a protected object that stays protected is never
//! unprotected in between.
use kya_common::maps as map_names;

use super::{Kernel, KernelError, KernelRules, insert_entries, remove_stale_entries};
use crate::{files::tables::FileTables, network::table::NetTable};

/// Everything the kernel enforces for one config.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub file_tables: FileTables,
    pub net_table: NetTable,
    pub rules: KernelRules,
    /// Ids of the configured agents, which get their counters and event budgets before any rule
    /// can tag a task.
    pub agents: Vec<u32>,
}

/// A policy with more entries than one of the kernel maps holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the config needs {needed} entries in the kernel map {map}, which holds {capacity}; \
     protect or allow fewer, broader paths or networks"
)]
pub struct PolicyTooLarge {
    pub map: &'static str,
    pub needed: usize,
    pub capacity: u32,
}

impl Policy {
    /// Refuses a policy that cannot fit in the maps, before any of it is written.
    pub fn check_fits(&self) -> Result<(), PolicyTooLarge> {
        let sizes = [
            (
                map_names::PROTECTED_INODES,
                self.file_tables.inodes.len(),
                map_names::MAX_PROTECTED_INODES,
            ),
            (
                map_names::PROTECTED_NAMES,
                self.file_tables.names.len(),
                map_names::MAX_PROTECTED_NAMES,
            ),
            (
                map_names::NET_ALLOW,
                self.net_table.entries.len(),
                map_names::MAX_NET_RULES,
            ),
            (
                map_names::EXE_RULES,
                self.rules.exe.len(),
                map_names::MAX_EXE_RULES,
            ),
            (
                map_names::UID_RULES,
                self.rules.uid.len(),
                map_names::MAX_UID_RULES,
            ),
            (
                map_names::CGROUP_RULES,
                self.rules.cgroup.len(),
                map_names::MAX_CGROUP_RULES,
            ),
        ];
        match sizes
            .into_iter()
            .find(|&(_, needed, capacity)| needed > capacity as usize)
        {
            Some((map, needed, capacity)) => Err(PolicyTooLarge {
                map,
                needed,
                capacity,
            }),
            None => Ok(()),
        }
    }
}

impl Kernel {
    /// Replaces whatever policy the maps hold with `policy`, tightening first (see the module
    /// documentation). On an error the maps hold a mix of both policies; the caller applies
    /// the previous policy again.
    pub fn apply_policy(&mut self, policy: &Policy) -> Result<(), KernelError> {
        self.create_counters(&policy.agents)?;
        self.create_event_budgets(&policy.agents)?;
        self.protect(&policy.file_tables)?;
        self.remove_stale_net_entries(&policy.net_table)?;
        self.set_rules(&policy.rules)?;
        self.insert_net_entries(&policy.net_table)?;
        self.unprotect_stale(&policy.file_tables)
    }

    fn protect(&mut self, tables: &FileTables) -> Result<(), KernelError> {
        insert_entries(
            &mut self.hash_map(map_names::PROTECTED_INODES)?,
            &tables.inodes,
        )?;
        insert_entries(
            &mut self.hash_map(map_names::PROTECTED_NAMES)?,
            &tables.names,
        )
    }

    fn unprotect_stale(&mut self, tables: &FileTables) -> Result<(), KernelError> {
        remove_stale_entries(
            &mut self.hash_map(map_names::PROTECTED_NAMES)?,
            &tables.names,
        )?;
        remove_stale_entries(
            &mut self.hash_map(map_names::PROTECTED_INODES)?,
            &tables.inodes,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap as StdHashMap;

    use super::*;

    #[test]
    fn a_policy_larger_than_a_map_is_refused_naming_the_map() {
        let mut policy = Policy::default();
        policy.rules.uid = (0..=map_names::MAX_UID_RULES)
            .map(|uid| (uid, 1))
            .collect::<StdHashMap<_, _>>();
        let refused = policy.check_fits().expect_err("too many uid rules");
        assert_eq!(refused.map, map_names::UID_RULES);
        assert_eq!(refused.needed, map_names::MAX_UID_RULES as usize + 1);
        assert!(refused.to_string().contains("protect or allow fewer"));
        assert_eq!(Policy::default().check_fits(), Ok(()));
    }
}
