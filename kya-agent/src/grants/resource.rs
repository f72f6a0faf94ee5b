//! What a request or grant is about: one file object, or one network peer (a host's addresses
//! on one port).
use std::{fmt, net::IpAddr};

use kya_common::{net::NetKey, protect::InodeRuleKey};
use serde::{Deserialize, Serialize};

use crate::network::canonical;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Resource {
    /// A file object, by identity: every path and hard link to it.
    File {
        /// Kernel device number (`major << 20 | minor`) and inode.
        dev: u32,
        ino: u64,
        /// How a human recognises it (the path asked for, or what the denial showed).
        path: String,
    },
    /// A peer: these addresses on this port.
    Peer {
        addrs: Vec<IpAddr>,
        port: u16,
        /// The host name the addresses were resolved from, if any.
        host: Option<String>,
    },
}

/// What makes two resources the same, whatever their descriptions say: requests fold on it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceKey {
    File { dev: u32, ino: u64 },
    Peer { addrs: Vec<[u8; 16]>, port: u16 },
}

impl Resource {
    #[must_use]
    pub fn key(&self) -> ResourceKey {
        match self {
            Self::File { dev, ino, .. } => ResourceKey::File {
                dev: *dev,
                ino: *ino,
            },
            Self::Peer { addrs, port, .. } => {
                let mut canonical: Vec<[u8; 16]> = addrs
                    .iter()
                    .map(|addr| canonical::canonical(*addr))
                    .collect();
                canonical.sort_unstable();
                canonical.dedup();
                ResourceKey::Peer {
                    addrs: canonical,
                    port: *port,
                }
            }
        }
    }

    /// `file` or `connect`, the kind of grant, as metrics and `kya grants` name it.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::File { .. } => "file",
            Self::Peer { .. } => "connect",
        }
    }

    /// The kernel map keys that cover this resource for `agent`.
    #[must_use]
    pub fn kernel_keys(&self, agent: u32) -> (Vec<InodeRuleKey>, Vec<NetKey>) {
        match self.key() {
            ResourceKey::File { dev, ino } => (vec![InodeRuleKey { agent, dev, ino }], vec![]),
            ResourceKey::Peer { addrs, port } => (
                vec![],
                addrs
                    .into_iter()
                    .map(|addr| NetKey {
                        agent,
                        port,
                        padding: 0,
                        addr,
                    })
                    .collect(),
            ),
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { dev, ino, path } => write!(
                f,
                "file {path} [{}:{} inode {ino}]",
                dev >> 20,
                dev & 0xf_ffff
            ),
            Self::Peer { addrs, port, host } => {
                let addrs: Vec<String> = addrs
                    .iter()
                    .map(|addr| match addr {
                        IpAddr::V4(v4) => format!("{v4}:{port}"),
                        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
                    })
                    .collect();
                match host {
                    Some(host) => write!(f, "connect {host}:{port} ({})", addrs.join(", ")),
                    None => write!(f, "connect {}", addrs.join(", ")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_fold_across_address_forms() {
        let v4 = Resource::Peer {
            addrs: vec!["127.0.0.2".parse().unwrap()],
            port: 80,
            host: None,
        };
        let mapped = Resource::Peer {
            addrs: vec!["::ffff:127.0.0.2".parse().unwrap()],
            port: 80,
            host: Some("db".into()),
        };
        assert_eq!(v4.key(), mapped.key());
        assert_eq!(v4.to_string(), "connect 127.0.0.2:80");
        assert_eq!(mapped.to_string(), "connect db:80 ([::ffff:127.0.0.2]:80)");
    }

    #[test]
    fn files_are_their_identity() {
        let file = Resource::File {
            dev: (8 << 20) | 1,
            ino: 42,
            path: "/root/.aws/credentials".into(),
        };
        let (files, peers) = file.kernel_keys(7);
        assert_eq!(
            files,
            vec![InodeRuleKey {
                agent: 7,
                dev: (8 << 20) | 1,
                ino: 42
            }]
        );
        assert!(peers.is_empty());
        assert_eq!(
            file.to_string(),
            "file /root/.aws/credentials [8:1 inode 42]"
        );
    }
}
