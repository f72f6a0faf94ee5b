//! What the kernel reports that concerns grants: denials a human could grant (they become
//! pending requests, repeats folded into one) and operations a grant let through.
use std::net::IpAddr;

use kya_common::event::{DenyEvent, DenyKind, MatchedBy};

use super::GrantService;
use crate::{
    control::protocol::DenialRecord,
    events::now_ms,
    grants::{Decision, PendingRequest, Resource, resource::opened_as},
    text::AgentText,
};

/// Pending requests kept at most. Beyond this, new requests are not recorded (the denials
/// still happen and still show in `kya events`) until humans decide some.
const MAX_PENDING: usize = 1_024;

/// One kernel event, reduced to what the grant service needs.
#[derive(Debug, Clone)]
pub enum Observation {
    Denied {
        agent: String,
        resource: Resource,
        pid: u32,
        exe: Option<AgentText>,
        operation: String,
        why: AgentText,
    },
    GrantUsed {
        grant: u32,
        pid: u32,
        exe: Option<AgentText>,
        operation: String,
    },
}

impl Observation {
    /// The observation in a kernel event, if it concerns grants: a use of a grant, or the
    /// denial of something a grant can cover (reading a file, reaching a peer or a unix
    /// socket).
    #[must_use]
    pub fn from_event(event: &DenyEvent, record: &DenialRecord) -> Option<Self> {
        if event.grant != 0 {
            return Some(Self::GrantUsed {
                grant: event.grant,
                pid: record.pid,
                exe: record.exe.clone(),
                operation: record.kind.clone(),
            });
        }
        let kind = DenyKind::try_from(event.kind).ok()?;
        let matched = MatchedBy::try_from(event.matched).ok()?;
        let resource = match kind {
            DenyKind::FileOpen | DenyKind::FileAccess | DenyKind::FileMmap
                if matched != MatchedBy::ReadError && event.ino != 0 =>
            {
                let path = record
                    .path
                    .clone()
                    .or_else(|| record.name.clone())
                    .unwrap_or_default();
                Resource::File {
                    dev: event.dev,
                    ino: event.ino,
                    via: opened_as(&path, record.name.as_ref()),
                    path,
                }
            }
            DenyKind::Connect | DenyKind::Send
                if matches!(matched, MatchedBy::NotAllowed | MatchedBy::MetadataEndpoint)
                    && event.port != 0 =>
            {
                Resource::Peer {
                    addrs: vec![peer_address(event.addr)],
                    port: event.port,
                    host: record.host.clone(),
                }
            }
            // kya's own control socket answers no tagged caller, so no grant could help.
            DenyKind::Unix if record.socket.as_ref().is_some_and(is_control_socket) => {
                return None;
            }
            DenyKind::Unix if matched != MatchedBy::ReadError && event.ino != 0 => Resource::Unix {
                dev: event.dev,
                ino: event.ino,
                socket: record
                    .socket
                    .clone()
                    .or_else(|| record.name.clone())
                    .unwrap_or_default(),
                via: None,
            },
            _ => return None,
        };
        Some(Self::Denied {
            agent: record.agent.clone(),
            resource,
            pid: record.pid,
            exe: record.exe.clone(),
            operation: record.kind.clone(),
            why: record.why.clone(),
        })
    }
}

/// Whether a refused socket is kya's own control socket (by its default paths).
fn is_control_socket(socket: &AgentText) -> bool {
    [crate::paths::CONTROL_SOCKET, "/var/run/kya/kya.sock"]
        .iter()
        .any(|control| socket == control)
}

/// The canonical 16 bytes as the address a human would write: IPv4-mapped ones as IPv4.
fn peer_address(addr: [u8; 16]) -> IpAddr {
    let v6 = std::net::Ipv6Addr::from(addr);
    v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
}

/// Who asked most recently, what they tried, and why it was refused.
struct Asker {
    pid: u32,
    exe: Option<AgentText>,
    operation: String,
    why: AgentText,
}

impl GrantService {
    pub(super) async fn observe(&mut self, observation: Observation) {
        match observation {
            Observation::Denied {
                agent,
                resource,
                pid,
                exe,
                operation,
                why,
            } => self.denied(
                agent,
                resource,
                Asker {
                    pid,
                    exe,
                    operation,
                    why,
                },
            ),
            Observation::GrantUsed {
                grant,
                pid,
                exe,
                operation,
            } => self.grant_used(grant, pid, exe, operation).await,
        }
    }

    fn denied(&mut self, agent: String, resource: Resource, asker: Asker) {
        let Asker {
            pid,
            exe,
            operation,
            why,
        } = asker;
        if self.is_contained(&agent) {
            // A contained agent asks for nothing: no human may grant it anything.
            return;
        }
        let now = now_ms();
        if let Some(id) = self.store.state().pending_for(&agent, &resource.key()) {
            self.store.update_quietly(|state| {
                if let Some(request) = state.pending.get_mut(&id) {
                    request.count += 1;
                    request.last_ms = now;
                    request.pid = pid;
                    request.exe = exe;
                    request.operation = operation;
                    request.why = Some(why);
                }
            });
            self.counts_changed = true;
            self.pending_changed();
            return;
        }
        if self.store.state().pending.len() >= MAX_PENDING {
            tracing::warn!(agent = %agent, resource = %resource, "too many pending requests; this one is not recorded");
            return;
        }
        let request = PendingRequest {
            id: self.store.state().new_request_id(),
            agent,
            resource,
            pid,
            exe,
            operation,
            first_ms: now,
            last_ms: now,
            count: 1,
            why: Some(why),
        };
        tracing::info!(request = request.id, agent = %request.agent, resource = %request.resource, "access requested");
        if let Err(message) = self.record(&Decision::Request { request }) {
            tracing::error!(error = %message, "cannot record a request");
        }
    }

    async fn grant_used(&mut self, id: u32, pid: u32, exe: Option<AgentText>, operation: String) {
        let Some(grant) = self.store.state().grants.get(&id).cloned() else {
            // Already ended (or its use was noticed first by upkeep).
            return;
        };
        if !grant.once && grant.uses > 0 {
            // Later uses of a timed grant are counted, not each written to the trail.
            self.store.update_quietly(|state| {
                if let Some(grant) = state.grants.get_mut(&id) {
                    grant.uses += 1;
                }
            });
            self.counts_changed = true;
            return;
        }
        let decision = Decision::GrantUsed {
            grant: id,
            agent: grant.agent.clone(),
            resource: grant.resource.clone(),
            pid: Some(pid),
            exe,
            operation,
        };
        if let Err(message) = self.record(&decision) {
            tracing::error!(error = %message, "cannot record a grant's use");
        }
        if grant.once {
            // Its token is spent; clear the keys it leaves behind.
            self.remove_from_kernel(id, true).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use kya_common::protect::{NAME_LEN, UNIX_PATH_MAX};

    use super::*;
    use crate::{config::Config, events::describe};

    fn unix_event(matched: MatchedBy, sun_path: &[u8]) -> DenyEvent {
        let mut name = [0; NAME_LEN];
        name[..3].copy_from_slice(b"bus");
        let mut path = [0; UNIX_PATH_MAX];
        path[..sun_path.len()].copy_from_slice(sun_path);
        DenyEvent {
            kind: DenyKind::Unix as u32,
            agent: crate::config::AgentId::from_name("coder").get(),
            tgid: 4_000_000,
            pid: 4_000_000,
            matched: matched as u32,
            rule: kya_common::event::NO_RULE,
            ino: 77,
            dev: 25,
            detail: 0,
            name,
            comm: [0; 16],
            addr: [0; 16],
            port: 0,
            protocol: 0,
            grant: 0,
            peer_pid: 0,
            sun_path: path,
            sun_path_len: u32::try_from(sun_path.len()).unwrap(),
            padding: 0,
        }
    }

    #[test]
    fn a_refused_unix_socket_becomes_a_request_for_that_socket() {
        let config = Config::from_toml_str(
            "[[agents]]\nname = \"coder\"\nowner = \"alice\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let event = unix_event(MatchedBy::NotAllowed, b"/run/user/1000/bus\0");
        let record = describe(&event, &config, &[]);
        let Some(Observation::Denied {
            agent, resource, ..
        }) = Observation::from_event(&event, &record)
        else {
            panic!("expected a request");
        };
        assert_eq!(agent, "coder");
        assert_eq!(
            resource,
            Resource::Unix {
                dev: 25,
                ino: 77,
                socket: "/run/user/1000/bus".into(),
                via: None
            }
        );
        let unreadable = unix_event(MatchedBy::ReadError, b"");
        let record = describe(&unreadable, &config, &[]);
        assert!(
            Observation::from_event(&unreadable, &record).is_none(),
            "nothing a grant could name"
        );
        let control = unix_event(MatchedBy::Object, b"/run/kya/kya.sock\0");
        let record = describe(&control, &config, &[]);
        assert!(
            Observation::from_event(&control, &record).is_none(),
            "kya's control socket answers no agent, granted or not"
        );
    }

    #[test]
    fn a_refused_metadata_endpoint_becomes_a_request_for_that_peer() {
        let config = Config::from_toml_str(
            "[[agents]]\nname = \"coder\"\nowner = \"alice\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let mut event = unix_event(MatchedBy::MetadataEndpoint, b"");
        event.kind = DenyKind::Connect as u32;
        event.name = [0; NAME_LEN];
        event.sun_path_len = 0;
        event.addr = kya_common::net::mapped_ipv4([169, 254, 169, 254]);
        event.port = 80;
        event.protocol = kya_common::net::protocol::TCP;
        let record = describe(&event, &config, &[]);
        assert!(
            record.why.to_string().contains("cloud metadata endpoint"),
            "{}",
            record.why
        );
        let Some(Observation::Denied { resource, .. }) = Observation::from_event(&event, &record)
        else {
            panic!("expected a request");
        };
        let Resource::Peer { addrs, port, .. } = resource else {
            panic!("expected a peer, got {resource:?}");
        };
        assert_eq!(addrs, vec![std::net::IpAddr::from([169, 254, 169, 254])]);
        assert_eq!(port, 80);
    }
}
