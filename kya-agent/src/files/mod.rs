//! Credential files: which files agents may not read, and which each agent may read after all.
//!
//! - `catalogue`: the built-in list, protected from every agent: paths and trees, the private
//!   key directories (`~/.ssh`, `~/.gnupg`) and the file-name rule the kernel matches itself
//!   (dotenv files).
//! - The built-in list of execution footholds, which agents may read but not change, is
//!   `config::footholds`: `files.allow_writes` may name only its entries.
//! - `homes`: the home directories that `~/` expands to.
//! - `plan`: the catalogue and every agent's `[agents.files]` expanded to concrete paths.
//! - `tables`: the plan resolved against this host's filesystem into the kernel's rule tables.
//! - `trusted`: files kya-agent trusts without owning them (name resolution, how systemd starts
//!   it, the libraries it loads), which agents may read but not change.
//! - `protection`: whether a file is protected from an agent, decided over those tables exactly
//!   as the kernel decides it (for grants and events; the kernel stays the only enforcer).
//!
//! `catalogue` and `plan` are pure; `homes` reads the user database and `tables` and
//! `protection` read the filesystem.

mod catalogue;
mod homes;
mod plan;
pub mod protection;
pub mod tables;
pub mod trusted;

pub use self::{
    catalogue::{
        CATALOGUE, CatalogueEntry, Category, Covers, NamePattern, is_dotenv_name,
        is_public_key_material_name,
    },
    homes::{homes_from_passwd, homes_with_root, system_homes},
    plan::{AgentFiles, PlannedPath, ProtectionPlan, Scope, Why, resolve},
};
