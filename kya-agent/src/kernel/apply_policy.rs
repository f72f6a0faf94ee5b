//! Putting a whole compiled policy (see `crate::policy`) in force: at start, over the maps an earlier daemon left, and
//! on every reload.
//!
//! The maps cannot all change in one instant, so the change is ordered to tighten first: new
//! protections and the removal of dropped allowlist entries take effect before new allowlist
//! entries and the removal of dropped protections. While it runs, nothing is allowed that the
//! old and the new policy both refuse, and a protected object that stays protected is never
//! unprotected in between.
use kya_common::maps as map_names;

use super::{Kernel, KernelError, insert_entries, remove_stale_entries};
use crate::{files::tables::FileTables, policy::Policy};

impl Kernel {
    /// Replaces whatever policy the maps hold with `policy`, tightening first (see the module
    /// documentation). On an error the maps hold a mix of both policies; the caller applies
    /// the previous policy again.
    pub fn apply_policy(&mut self, policy: &Policy) -> Result<(), KernelError> {
        self.create_counters(&policy.agents)?;
        self.create_event_budgets(&policy.agents)?;
        self.protect(&policy.file_tables)?;
        self.remove_stale_net_entries(&policy.net_table)?;
        self.set_rules(&policy.rules.kernel)?;
        self.insert_net_entries(&policy.net_table)?;
        self.unprotect_stale(&policy.file_tables)
    }

    /// New protections, then a new rules generation: verdicts the file hooks remembered are
    /// stale from then on, even after a failure part way.
    fn protect(&mut self, tables: &FileTables) -> Result<(), KernelError> {
        let inserted = insert_entries(
            &mut self.hash_map(map_names::PROTECTED_INODES)?,
            &tables.inodes,
        )
        .and_then(|()| {
            insert_entries(
                &mut self.hash_map(map_names::PROTECTED_NAMES)?,
                &tables.names,
            )
        });
        self.bump_rules_generation()?;
        inserted
    }

    fn unprotect_stale(&mut self, tables: &FileTables) -> Result<(), KernelError> {
        let removed = remove_stale_entries(
            &mut self.hash_map(map_names::PROTECTED_NAMES)?,
            &tables.names,
        )
        .and_then(|()| {
            remove_stale_entries(
                &mut self.hash_map(map_names::PROTECTED_INODES)?,
                &tables.inodes,
            )
        });
        self.bump_rules_generation()?;
        removed
    }
}
