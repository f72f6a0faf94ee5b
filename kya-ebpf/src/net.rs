//! Whether an agent may reach a network peer, and refusing (with an event) when it may not.
use aya_ebpf::maps::lpm_trie::Key;
use kya_common::{
    event::{DenyKind, MatchedBy},
    net::{NET_KEY_HEADER_BITS, NetKey, mapped_ipv4, protocol},
    tag::TaskTag,
};

use crate::{
    decision::{ALLOW, DENY},
    events::{count_grant_use, report, report_grant_use},
    grants,
    kernel::{self, ReadError},
    maps::NET_ALLOW,
    peer::{AF_INET, AF_INET6, Peer},
};

const SOCK_STREAM: u16 = 1;
const SOCK_DGRAM: u16 = 2;

/// The peer a `sockaddr` names, `None` for families without one (AF_UNSPEC disconnects,
/// AF_UNIX and others are judged elsewhere).
#[inline(always)]
pub fn sockaddr_peer(address: u64) -> Result<Option<Peer>, ReadError> {
    let family: u16 = kernel::read_plain(address, 0)?;
    let port: u16 = match family {
        AF_INET | AF_INET6 => u16::from_be(kernel::read_plain(address, 2)?),
        _ => return Ok(None),
    };
    let addr = if family == AF_INET {
        mapped_ipv4(kernel::read_plain(address, 4)?)
    } else {
        kernel::read_plain(address, 8)?
    };
    Ok(Some(Peer { addr, port }))
}

/// Whether the family of a `sockaddr` is `family`.
#[inline(always)]
pub fn sockaddr_family(address: u64) -> Result<u16, ReadError> {
    kernel::read_plain(address, 0)
}

/// Whether `agent` may reach `peer`: an allowlist entry for its port, or for any port.
#[inline(always)]
pub fn allowed(agent: u32, peer: &Peer) -> bool {
    for port in [peer.port, 0] {
        let key = Key::new(
            NET_KEY_HEADER_BITS + 128,
            NetKey {
                agent,
                port,
                padding: 0,
                addr: peer.addr,
            },
        );
        if NET_ALLOW.get(&key).is_some() {
            return true;
        }
    }
    false
}

/// The protocol of a socket, for events.
#[inline(always)]
pub fn protocol_of(socket: u64) -> u16 {
    match kernel::socket_type(socket) {
        Ok(SOCK_STREAM) => protocol::TCP,
        Ok(SOCK_DGRAM) => protocol::UDP,
        _ => protocol::OTHER,
    }
}

/// How an operation reaches its peer, which decides how a grant applies to it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// `connect`: a grant is used up (if single-use) and the socket remembered.
    Connect,
    /// A datagram (or Fast Open payload) with its own destination: one use of a grant.
    Datagram,
    /// A send on a connected socket: allowed if it was connected under a grant that lasts.
    Connected,
}

/// Allows `peer` for `tag`'s agent (allowlist, then grants) or refuses with an event.
#[inline(always)]
pub fn guard_peer(kind: DenyKind, tag: TaskTag, socket: u64, peer: &Peer, reach: Reach) -> i32 {
    if allowed(tag.agent, peer) {
        return ALLOW;
    }
    if reach == Reach::Connected {
        if grants::use_peer(tag.agent, socket, peer).is_some() {
            // Sends on a granted connection are part of the connect that was reported.
            count_grant_use(kind, tag);
            return ALLOW;
        }
    } else if let Some(grant) = grants::open_peer(tag.agent, socket, peer, reach == Reach::Connect)
    {
        let protocol = protocol_of(socket);
        report_grant_use(kind, tag, MatchedBy::NotAllowed, grant, |event| {
            event.addr = peer.addr;
            event.port = peer.port;
            event.protocol = protocol;
        });
        return ALLOW;
    }
    refuse_peer(kind, tag, socket, peer, MatchedBy::NotAllowed)
}

/// Counts, reports and refuses.
#[inline(always)]
pub fn refuse_peer(
    kind: DenyKind,
    tag: TaskTag,
    socket: u64,
    peer: &Peer,
    matched: MatchedBy,
) -> i32 {
    let protocol = protocol_of(socket);
    report(kind, tag, matched, |event| {
        event.addr = peer.addr;
        event.port = peer.port;
        event.protocol = protocol;
    });
    DENY
}
