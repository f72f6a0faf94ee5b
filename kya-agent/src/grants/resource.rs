//! What a request or grant is about: one file object, one network peer (a host's addresses on
//! one port) or one unix socket, and how a peer a human typed becomes one (a socket: see
//! `unix_socket`).
use std::{fmt, net::IpAddr};

use kya_common::{
    net::NetKey,
    protect::{ABSTRACT_DEV, InodeRuleKey},
};
use serde::{Deserialize, Serialize};

use crate::{
    config::{NetworkRule, PortSpec, RuleProblem, Target},
    network::{canonical, resolve_host_async},
    text::AgentText,
};

/// How a peer is written, for the fix of a mistake in one.
const PEER_FORMS: &str = "write HOST:PORT, such as db.internal:5432, 127.0.0.1:8080 or [::1]:8080";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Resource {
    /// A file object, by identity: every path and hard link to it.
    File {
        /// Kernel device number (`major << 20 | minor`) and inode.
        dev: u32,
        ino: u64,
        /// How a human recognises it: the protected path (what the denial showed, or the path
        /// asked for, which must be the object's real path: see `kya grant --file`).
        path: AgentText,
        /// The name the agent opened it by, when that is another name of the object than
        /// `path` (a hard link, or the file mounted elsewhere under another name). Absent from
        /// state and audit files written before kya recorded it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        via: Option<AgentText>,
    },
    /// A peer: these addresses on this port.
    Peer {
        addrs: Vec<IpAddr>,
        port: u16,
        /// The host name the addresses were resolved from, if any.
        host: Option<AgentText>,
    },
    /// A unix socket, by the kernel's identity: the socket file's device and inode (every
    /// path to it), or `ABSTRACT_DEV` and the hash of an abstract name.
    Unix {
        dev: u32,
        ino: u64,
        /// How a human recognises it: `/path` or `@name`.
        socket: AgentText,
        /// The path typed, when symlinks led from it to `socket`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        via: Option<AgentText>,
    },
}

/// What makes two resources the same, whatever their descriptions say: requests fold on it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceKey {
    File { dev: u32, ino: u64 },
    Peer { addrs: Vec<[u8; 16]>, port: u16 },
    Unix { dev: u32, ino: u64 },
}

impl Resource {
    /// The peer a human typed (`kya grant --connect`): `HOST:PORT`, `1.2.3.4:443` or
    /// `[::1]:8080`, written as a `network.allow` rule naming one host or address and one port.
    /// A host name stands for every address it resolves to now (sorted, without repeats); it
    /// is resolved off the async workers.
    pub async fn peer(text: &str) -> Result<Self, String> {
        let (target, port) = written_peer(text)?;
        let (addrs, host) = match target {
            Target::Cidr(cidr) => (vec![cidr.addr()], None),
            Target::Host(host) => {
                let addrs = resolve_host_async(host.clone())
                    .await
                    .map_err(|error| format!("cannot resolve `{host}`: {error}"))?;
                (addrs, Some(AgentText::from(host)))
            }
        };
        if addrs.is_empty() {
            let host = host.unwrap_or_default();
            return Err(format!("`{host}` resolves to no address"));
        }
        if let Some(bad) = addrs
            .iter()
            .find(|addr| addr.is_unspecified() || addr.is_multicast())
        {
            return Err(format!("`{bad}` is not a peer address a grant can name"));
        }
        Ok(Self::Peer { addrs, port, host })
    }

    #[must_use]
    pub fn key(&self) -> ResourceKey {
        match self {
            Self::File { dev, ino, .. } => ResourceKey::File {
                dev: *dev,
                ino: *ino,
            },
            Self::Unix { dev, ino, .. } => ResourceKey::Unix {
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

    /// `file`, `connect` or `unix`, the kind of grant, as metrics and `kya grants` name it.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::File { .. } => "file",
            Self::Peer { .. } => "connect",
            Self::Unix { .. } => "unix",
        }
    }

    /// The kernel map keys that cover this resource for `agent`.
    #[must_use]
    pub fn kernel_keys(&self, agent: u32) -> (Vec<InodeRuleKey>, Vec<NetKey>) {
        match self.key() {
            // The kernel looks both up in FILE_GRANTS: a socket file is a file.
            ResourceKey::File { dev, ino } | ResourceKey::Unix { dev, ino } => {
                (vec![InodeRuleKey { agent, dev, ino }], vec![])
            }
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

impl Resource {
    /// How `kya pending`, `kya grants` and the log name it: `file PATH [8:1 inode 42]`,
    /// `connect HOST:PORT (ADDRESSES)`, `unix SOCKET [...]`. Its path, host or socket name may
    /// be an agent's choice, so it is composed raw and shown escaped as a whole.
    #[must_use]
    pub fn text(&self) -> AgentText {
        let identity =
            |dev: u32, ino: u64| format!(" [{}:{} inode {ino}]", dev >> 20, dev & 0xf_ffff);
        let mut text = AgentText::default();
        match self {
            Self::File {
                dev,
                ino,
                path,
                via,
            } => {
                text.push("file ");
                text.push(path);
                if let Some(via) = via {
                    text.push(" (opened as `");
                    text.push(via);
                    text.push("`, another name of it)");
                }
                text.push(identity(*dev, *ino));
            }
            Self::Peer { addrs, port, host } => {
                let addrs: Vec<String> = addrs
                    .iter()
                    .map(|addr| match addr {
                        IpAddr::V4(v4) => format!("{v4}:{port}"),
                        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
                    })
                    .collect();
                text.push("connect ");
                match host {
                    Some(host) => {
                        text.push(host);
                        text.push(format!(":{port} ({})", addrs.join(", ")));
                    }
                    None => text.push(addrs.join(", ")),
                }
            }
            Self::Unix {
                dev, ino, socket, ..
            } if *dev == ABSTRACT_DEV => {
                text.push("unix ");
                text.push(socket);
                text.push(format!(" [abstract, hash {ino:016x}]"));
            }
            Self::Unix {
                dev,
                ino,
                socket,
                via,
            } => {
                text.push("unix ");
                text.push(socket);
                if let Some(via) = via {
                    text.push(" (reached from ");
                    text.push(via);
                    text.push(")");
                }
                text.push(identity(*dev, *ino));
            }
        }
        text
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.text().fmt(f)
    }
}

/// The name a file was opened by (`name`, as the kernel saw it), when it is not the last
/// component of the protected path shown for it (`path`): the agent reached the object by
/// another name, a hard link or the file mounted elsewhere. A path inside a tree
/// (`/srv/secrets/…/key`) ends with the name it was opened by.
#[must_use]
pub fn opened_as(path: &AgentText, name: Option<&AgentText>) -> Option<AgentText> {
    let name = name.filter(|name| !name.is_empty())?;
    let path = path.as_bytes();
    let last = path.rsplit(|&byte| byte == b'/').next().unwrap_or(path);
    (last != name.as_bytes()).then(|| name.clone())
}

/// The one host or address and the one port of the peer `text`, parsed as a rule is.
fn written_peer(text: &str) -> Result<(Target, u16), String> {
    let bad_port =
        |port: &str| format!("`{port}` in `{text}` is not a port (1-65535); {PEER_FORMS}");
    let rule = NetworkRule::parse(text).map_err(|problem| match problem {
        RuleProblem::MissingPort { .. } => format!("`{text}` has no port; {PEER_FORMS}"),
        RuleProblem::Empty | RuleProblem::MissingAddress => {
            format!("`{text}` has no host; {PEER_FORMS}")
        }
        RuleProblem::PortZero => bad_port("0"),
        RuleProblem::InvalidPort { text: port } | RuleProblem::PortOutOfRange { port } => {
            bad_port(&port)
        }
        RuleProblem::InvertedPortRange { first, last } => bad_port(&format!("{first}-{last}")),
        RuleProblem::Malformed | RuleProblem::WildcardAddress { .. } => {
            format!("`{text}` is not a peer; {PEER_FORMS}")
        }
        problem => format!("`{text}`: {problem}; {}", problem.fix()),
    })?;
    let PortSpec::One(port) = rule.port else {
        return Err(bad_port(&rule.port.to_string()));
    };
    match rule.target {
        Target::Cidr(cidr) if !cidr.is_host() => Err(format!(
            "`{cidr}` in `{text}` is a network; a grant names one host or address; {PEER_FORMS}"
        )),
        target => Ok((target, port)),
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

    #[tokio::test]
    async fn peers_parse_with_clear_errors() {
        let Ok(Resource::Peer { addrs, port, host }) = Resource::peer("[::1]:8080").await else {
            panic!("literal IPv6 peer refused");
        };
        assert_eq!(
            (addrs, port, host),
            (vec!["::1".parse().unwrap()], 8080, None)
        );
        let refused = async |text: &str| {
            Resource::peer(text)
                .await
                .expect_err(&format!("expected `{text}` to be refused"))
        };
        assert!(refused("127.0.0.1").await.contains("no port"));
        assert!(refused("127.0.0.1:0").await.contains("not a port"));
        assert!(refused("0.0.0.0:80").await.contains("not a peer"));
        assert!(refused(":80").await.contains("no host"));
    }

    #[tokio::test]
    async fn peers_are_one_address_or_host_and_one_port() {
        let refused = async |text: &str| {
            Resource::peer(text)
                .await
                .expect_err(&format!("expected `{text}` to be refused"))
        };
        assert!(refused("10.0.0.0/8:80").await.contains("is a network"));
        assert!(refused("127.0.0.1:*").await.contains("`*` in"));
        assert!(refused("127.0.0.1:80-90").await.contains("`80-90` in"));
        assert!(refused("127.0.0.1:http").await.contains("`http` in"));
        let bare = refused("::1:8080").await;
        assert!(bare.contains("\"[::1]:8080\""), "{bare}");
        let Ok(Resource::Peer { addrs, .. }) = Resource::peer("127.0.0.2:80").await else {
            panic!("literal IPv4 peer refused");
        };
        assert_eq!(addrs, vec!["127.0.0.2".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn unix_sockets_are_their_identity_in_the_file_grants() {
        let bus = Resource::Unix {
            dev: 25,
            ino: 7,
            socket: "/run/user/1000/bus".into(),
            via: None,
        };
        assert_eq!(bus.kind(), "unix");
        assert_eq!(
            bus.kernel_keys(3).0,
            vec![InodeRuleKey {
                agent: 3,
                dev: 25,
                ino: 7
            }]
        );
        assert_eq!(bus.to_string(), "unix /run/user/1000/bus [0:25 inode 7]");
        let abstract_socket = Resource::Unix {
            dev: ABSTRACT_DEV,
            ino: 0xab,
            socket: "@tmux".into(),
            via: None,
        };
        assert_eq!(
            abstract_socket.to_string(),
            "unix @tmux [abstract, hash 00000000000000ab]"
        );
        let json = serde_json::to_string(&bus).unwrap();
        assert_eq!(
            json,
            r#"{"type":"unix","dev":25,"ino":7,"socket":"/run/user/1000/bus"}"#
        );
        assert_eq!(serde_json::from_str::<Resource>(&json).unwrap(), bus);
        assert_ne!(
            bus.key(),
            Resource::File {
                dev: 25,
                ino: 7,
                path: AgentText::default(),
                via: None,
            }
            .key()
        );
    }

    #[test]
    fn files_are_their_identity() {
        let file = Resource::File {
            dev: (8 << 20) | 1,
            ino: 42,
            path: "/root/.aws/credentials".into(),
            via: None,
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
        assert_eq!(
            serde_json::to_string(&file).unwrap(),
            r#"{"type":"file","dev":8388609,"ino":42,"path":"/root/.aws/credentials"}"#,
            "a file opened by its own name is recorded as before"
        );
    }

    #[test]
    fn a_file_opened_by_another_name_shows_both() {
        let linked = Resource::File {
            dev: (8 << 20) | 1,
            ino: 42,
            path: "/home/alice/.aws/credentials".into(),
            via: Some("notes".into()),
        };
        assert_eq!(
            linked.to_string(),
            "file /home/alice/.aws/credentials (opened as `notes`, another name of it) \
             [8:1 inode 42]"
        );
        let same = Resource::File {
            dev: (8 << 20) | 1,
            ino: 42,
            path: "/home/alice/.aws/credentials".into(),
            via: None,
        };
        assert_eq!(linked.key(), same.key(), "one object, one request");
        let credentials = AgentText::from("/home/alice/.aws/credentials");
        assert_eq!(
            opened_as(&credentials, Some(&"notes".into())),
            Some("notes".into())
        );
        for (path, name) in [
            ("/home/alice/.aws/credentials", Some("credentials")),
            ("/srv/secrets/…/db.key", Some("db.key")),
            ("/home/alice/.aws/credentials", None),
            ("/home/alice/.aws/credentials", Some("")),
        ] {
            let name = name.map(AgentText::from);
            assert_eq!(
                opened_as(&path.into(), name.as_ref()),
                None,
                "{path} {name:?}"
            );
        }
    }

    #[test]
    fn another_name_an_agent_chose_is_shown_escaped_and_read_back() {
        let file = Resource::File {
            dev: (8 << 20) | 1,
            ino: 42,
            path: "/home/alice/.aws/credentials".into(),
            via: Some(AgentText::from_bytes(b"no\x1b[2J\ntes\xff".as_slice())),
        };
        assert_eq!(
            file.to_string(),
            "file /home/alice/.aws/credentials (opened as `no\\x1b[2J\\ntes\\xff`, another \
             name of it) [8:1 inode 42]"
        );
        let json = serde_json::to_string(&file).unwrap();
        assert!(json.contains(r#""via":"no\\x1b[2J\\ntes\\xff""#), "{json}");
        let read: Resource = serde_json::from_str(&json).unwrap();
        assert_eq!(read, file, "the escaped name reads back to the same bytes");
    }
}
