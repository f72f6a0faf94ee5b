//! The config file exactly as written: serde types that keep each value's byte span so that
//! validation can point at it. Nothing here is checked beyond TOML types; see `validate`.
//!
//! To add a section, add a `Raw*` struct here (with `deny_unknown_fields`), a field for it
//! (`#[serde(default)]` if optional), and a `validate_*` function that turns it into the public
//! type.

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub agents: Vec<RawAgent>,
    /// `[approver_keys]`: user name → OpenSSH public key lines (see `approver_keys`).
    #[serde(default)]
    pub approver_keys: std::collections::BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
}

/// One `[[agents]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAgent {
    pub name: Spanned<String>,
    pub owner: Spanned<String>,
    #[serde(default)]
    pub approvers: Vec<Spanned<String>>,
    /// How an approval proves its human: `uid` (default), `ssh-key` or `totp`.
    #[serde(default)]
    pub approval: Option<Spanned<String>>,
    #[serde(default)]
    pub on_owner_gone: Option<Spanned<String>>,
    #[serde(default, rename = "match")]
    pub rules: RawMatch,
    #[serde(default)]
    pub files: RawFiles,
    #[serde(default)]
    pub network: RawNetwork,
}

/// `[agents.match]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMatch {
    #[serde(default)]
    pub exe: Vec<Spanned<String>>,
    #[serde(default)]
    pub cgroup: Vec<Spanned<String>>,
    #[serde(default)]
    pub uid: Vec<Spanned<u32>>,
}

/// `[agents.files]`: path patterns, checked by `validate` (see `PathPattern`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFiles {
    #[serde(default)]
    pub protect: Vec<Spanned<String>>,
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    #[serde(default)]
    pub protect_writes: Vec<Spanned<String>>,
    #[serde(default)]
    pub allow_writes: Vec<Spanned<String>>,
}

/// `[agents.network]`: address rules and socket paths, checked by `validate` (see
/// `NetworkRule`). `allow_dns` is `None` when absent; its default is applied in `validate`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    #[serde(default)]
    pub unix_deny: Vec<Spanned<String>>,
    #[serde(default)]
    pub unix_allow: Vec<Spanned<String>>,
    #[serde(default)]
    pub allow_dns: Option<bool>,
}
