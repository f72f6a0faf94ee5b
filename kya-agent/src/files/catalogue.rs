//! The built-in credential catalogue: files that hold credentials on most hosts, protected from
//! every agent unless its `files.allow` exempts them. Kept as data, each entry with a short
//! label that events and `kya-agent check-config` show as the reason a file is protected.
//!
//! Most entries are path patterns, resolved to inodes when the daemon starts. Two are file-name
//! rules that the kernel applies itself, because such files can appear anywhere at any time:
//! ssh private keys (in every `~/.ssh/`) and dotenv files (in any directory).

// The name matchers are shared with the kernel programs, which apply the same rules.
pub use kya_common::protect::{is_dotenv_name, is_ssh_private_key_name};

use crate::config::PathPattern;

/// One entry of [`CATALOGUE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatalogueEntry {
    /// A file, or a tree if `pattern` ends with `/`, in the config's path pattern form.
    Path {
        pattern: &'static str,
        why: &'static str,
    },
    /// A file-name rule that the kernel matches.
    Name(NamePattern),
}

impl CatalogueEntry {
    /// Why the entry is protected: "AWS credentials", "ssh private key".
    #[must_use]
    pub fn why(self) -> &'static str {
        match self {
            Self::Path { why, .. } => why,
            Self::Name(name) => name.why(),
        }
    }

    /// The entry's path pattern, or `None` for a name rule.
    #[must_use]
    pub fn path_pattern(self) -> Option<PathPattern> {
        match self {
            Self::Path { pattern, .. } => {
                Some(PathPattern::parse(pattern).unwrap_or_else(|problem| {
                    panic!("catalogue pattern {pattern:?} is invalid: {problem}")
                }))
            }
            Self::Name(_) => None,
        }
    }
}

/// Shorthand for the table below.
const fn path(pattern: &'static str, why: &'static str) -> CatalogueEntry {
    CatalogueEntry::Path { pattern, why }
}

/// Protected from every agent. `~/` means the path in every user's home (see
/// [`system_homes`](super::system_homes)).
pub const CATALOGUE: &[CatalogueEntry] = &[
    path("~/.aws/credentials", "AWS credentials"),
    // Holds `credential_process` commands and SSO settings that lead to credentials.
    path("~/.aws/config", "AWS config"),
    path("~/.config/gcloud/", "Google Cloud credentials"),
    path("~/.azure/", "Azure CLI credentials"),
    path("~/.kube/config", "Kubernetes kubeconfig"),
    path("~/.docker/config.json", "Docker registry credentials"),
    path("~/.netrc", "netrc passwords"),
    path("~/.git-credentials", "git credentials"),
    path("~/.config/gh/hosts.yml", "GitHub CLI token"),
    path("~/.npmrc", "npm token"),
    path("~/.pypirc", "PyPI token"),
    path("~/.cargo/credentials.toml", "crates.io token"),
    // Cargo before 1.46 wrote the token here, and still reads it.
    path("~/.cargo/credentials", "crates.io token"),
    path("/etc/shadow", "password hashes"),
    path("/etc/gshadow", "group password hashes"),
    // The token Kubernetes mounts into pods. /var/run is normally a link to /run, but not
    // everywhere, so both are listed; resolving both to the same inode is harmless.
    path(
        "/var/run/secrets/kubernetes.io/serviceaccount/",
        "Kubernetes service account token",
    ),
    path(
        "/run/secrets/kubernetes.io/serviceaccount/",
        "Kubernetes service account token",
    ),
    CatalogueEntry::Name(NamePattern::SshPrivateKey),
    CatalogueEntry::Name(NamePattern::Dotenv),
];

/// The directory, in every home, whose [`NamePattern::SshPrivateKey`] files are protected.
pub const SSH_DIR: &str = ".ssh";

/// A file-name rule that the kernel matches itself at every open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NamePattern {
    /// In every `~/.ssh/`: names that start with `id_` and do not end with `.pub`.
    SshPrivateKey,
    /// Anywhere: `.env`, or a name starting with `.env.`.
    Dotenv,
}

impl NamePattern {
    /// Why files with such names are protected.
    #[must_use]
    pub fn why(self) -> &'static str {
        match self {
            Self::SshPrivateKey => "ssh private key",
            Self::Dotenv => "dotenv file",
        }
    }

    /// Which files the rule covers, for people.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::SshPrivateKey => "~/.ssh/id_* except ~/.ssh/id_*.pub",
            Self::Dotenv => ".env and .env.* in any directory",
        }
    }

    /// Whether a file called `name` (one path component) is covered; for ssh keys, the
    /// directory must also be an ssh key directory.
    #[must_use]
    pub fn matches(self, name: &[u8]) -> bool {
        match self {
            Self::SshPrivateKey => is_ssh_private_key_name(name),
            Self::Dotenv => is_dotenv_name(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::config::PatternBase;

    #[test]
    fn every_catalogue_path_is_a_valid_pattern_written_canonically() {
        for entry in CATALOGUE {
            if let CatalogueEntry::Path { pattern, why } = *entry {
                let parsed = entry.path_pattern().expect("a path entry has a pattern");
                assert_eq!(parsed.to_string(), pattern, "expected the canonical form");
                assert!(!why.is_empty(), "{pattern} needs a label");
            }
        }
        let patterns: Vec<&str> = CATALOGUE
            .iter()
            .filter_map(|entry| match entry {
                CatalogueEntry::Path { pattern, .. } => Some(*pattern),
                CatalogueEntry::Name(_) => None,
            })
            .collect();
        let distinct: HashSet<&str> = patterns.iter().copied().collect();
        assert_eq!(distinct.len(), patterns.len(), "expected no repeats");
    }

    #[test]
    fn catalogue_holds_the_documented_entries() {
        let expected = [
            ("~/.aws/credentials", false),
            ("~/.aws/config", false),
            ("~/.config/gcloud/", true),
            ("~/.azure/", true),
            ("~/.kube/config", false),
            ("~/.docker/config.json", false),
            ("~/.netrc", false),
            ("~/.git-credentials", false),
            ("~/.config/gh/hosts.yml", false),
            ("~/.npmrc", false),
            ("~/.pypirc", false),
            ("~/.cargo/credentials.toml", false),
            ("~/.cargo/credentials", false),
            ("/etc/shadow", false),
            ("/etc/gshadow", false),
            ("/var/run/secrets/kubernetes.io/serviceaccount/", true),
            ("/run/secrets/kubernetes.io/serviceaccount/", true),
        ];
        let actual: Vec<(String, bool)> = CATALOGUE
            .iter()
            .filter_map(|entry| entry.path_pattern())
            .map(|pattern| (pattern.to_string(), pattern.is_tree()))
            .collect();
        let expected: Vec<(String, bool)> = expected
            .iter()
            .map(|&(pattern, tree)| (pattern.to_owned(), tree))
            .collect();
        assert_eq!(actual, expected);
        let names: Vec<NamePattern> = CATALOGUE
            .iter()
            .filter_map(|entry| match entry {
                CatalogueEntry::Name(name) => Some(*name),
                CatalogueEntry::Path { .. } => None,
            })
            .collect();
        assert_eq!(names, [NamePattern::SshPrivateKey, NamePattern::Dotenv]);
        assert_eq!(
            CATALOGUE[0].path_pattern().map(|pattern| pattern.base()),
            Some(PatternBase::Home)
        );
        assert_eq!(CATALOGUE[0].why(), "AWS credentials");
        assert_eq!(
            CatalogueEntry::Name(NamePattern::Dotenv).why(),
            "dotenv file"
        );
    }

    #[test]
    fn dotenv_names() {
        for name in [".env", ".env.local", ".env.production", ".env.", ".env..x"] {
            assert!(is_dotenv_name(name.as_bytes()), "{name:?} is a dotenv file");
            assert!(NamePattern::Dotenv.matches(name.as_bytes()));
        }
        for name in [
            ".envrc",
            "env",
            "x.env",
            ".env-local",
            ".Env",
            ".en",
            "",
            "..env",
            "a/.env",
        ] {
            assert!(
                !is_dotenv_name(name.as_bytes()),
                "{name:?} is not a dotenv file"
            );
        }
    }

    #[test]
    fn ssh_private_key_names() {
        for name in [
            "id_rsa",
            "id_ed25519",
            "id_ecdsa",
            "id_ed25519_sk",
            "id_rsa.old",
            "id_",
        ] {
            assert!(
                is_ssh_private_key_name(name.as_bytes()),
                "{name:?} is a private key"
            );
            assert!(NamePattern::SshPrivateKey.matches(name.as_bytes()));
        }
        for name in [
            "id_rsa.pub",
            "id_ed25519.pub",
            "known_hosts",
            "authorized_keys",
            "config",
            "id-rsa",
            "ID_RSA",
            "my_id_rsa",
            "",
        ] {
            assert!(
                !is_ssh_private_key_name(name.as_bytes()),
                "{name:?} is not a private key"
            );
        }
    }
}
