//! Whether an agent may reach a network peer, and refusing (with an event) when it may not.
use aya_ebpf::maps::lpm_trie::Key;
use kya_common::{
    event::{DenyKind, MatchedBy},
    net::{NET_KEY_HEADER_BITS, NET_REFUSED_METADATA, NetKey, mapped_ipv4, protocol},
    tag::TaskTag,
};

use crate::{
    decision::{ALLOW, DENY},
    events::{count_grant_use, report, report_grant_use},
    grants,
    kernel::{self, ReadError},
    maps::{INBOUND_SOCKETS, NET_ALLOW},
    peer::{AF_INET, AF_INET6, AF_NETLINK, AF_UNIX, AF_UNSPEC, Peer, UNKNOWN_PEER},
    unix,
};

pub const SOCK_STREAM: u16 = 1;
pub const SOCK_DGRAM: u16 = 2;
pub const SOCK_SEQPACKET: u16 = 5;
/// `socket->state` of a socket that has not been connected (or was disconnected).
pub const SS_UNCONNECTED: u32 = 1;

const IPPROTO_IP: u16 = 0;
const IPPROTO_ICMP: u16 = 1;
const IPPROTO_TCP: u16 = 6;
const IPPROTO_UDP: u16 = 17;
const IPPROTO_ICMPV6: u16 = 58;
const IPPROTO_UDPLITE: u16 = 136;
const IPPROTO_MPTCP: u16 = 262;

/// The IP protocols an agent may use: TCP, UDP and UDP-Lite, ping (ICMP and ICMPv6 datagram
/// sockets) and MPTCP, each sending to the address the socket is connected to or that a send
/// names, which the egress rules check. `IPPROTO_IP` is the type's default (TCP or UDP).
#[inline(always)]
pub fn ip_protocol_allowed(protocol: u16) -> bool {
    matches!(
        protocol,
        IPPROTO_IP
            | IPPROTO_ICMP
            | IPPROTO_TCP
            | IPPROTO_UDP
            | IPPROTO_ICMPV6
            | IPPROTO_UDPLITE
            | IPPROTO_MPTCP
    )
}

/// What a socket is, as far as the egress rules are concerned.
pub enum SocketClass {
    /// Netlink: talks to the local kernel.
    Local,
    /// AF_UNIX, `sock` its `struct sock`. A stream or seqpacket socket (`connection`) sends to
    /// the server it is connected to; datagrams are judged by `unix_may_send`, and connects by
    /// the unix hooks, which see the server the kernel found.
    Unix { sock: u64, connection: bool },
    /// A TCP, UDP or ping socket: `sock` is its `struct sock`, `family` AF_INET or AF_INET6.
    Ip {
        sock: u64,
        family: u16,
        stream: bool,
    },
    /// Any other family, or an IP socket of another type or protocol (SCTP, raw): agents may
    /// not use it.
    Forbidden,
}

/// The class of `socket`, from its `struct sock` (what the kernel will use).
#[inline(always)]
pub fn classify(socket: u64) -> Result<SocketClass, ReadError> {
    let sock = kernel::socket_sock(socket)?;
    let family = kernel::sock_family(sock)?;
    if family == AF_UNIX {
        let kind = kernel::socket_type(socket)?;
        return Ok(SocketClass::Unix {
            sock,
            connection: kind == SOCK_STREAM || kind == SOCK_SEQPACKET,
        });
    }
    if family == AF_NETLINK {
        return Ok(SocketClass::Local);
    }
    if family != AF_INET && family != AF_INET6 {
        return Ok(SocketClass::Forbidden);
    }
    let kind = kernel::socket_type(socket)?;
    if (kind != SOCK_STREAM && kind != SOCK_DGRAM)
        || !ip_protocol_allowed(kernel::sock_protocol(sock)?)
    {
        return Ok(SocketClass::Forbidden);
    }
    Ok(SocketClass::Ip {
        sock,
        family,
        stream: kind == SOCK_STREAM,
    })
}

/// Where an operation on a socket goes, as far as the egress rules are concerned.
pub enum Destination {
    /// Nothing for the allowlist: a local socket, a reply on a connection the agent accepted,
    /// or a send the kernel refuses by itself (no peer).
    Unchecked,
    /// An IP peer the allowlist (or a grant) must cover.
    Peer(Peer, Reach),
    /// The server a connected unix stream or seqpacket socket (`struct sock`) sends to.
    UnixServer(u64),
    /// Refused whatever the allowlist says, for this reason.
    Refused(MatchedBy),
}

/// Whether `agent` accepted `socket` itself (a reply, not outbound traffic). The mark must be
/// this very socket's: one left by a freed socket whose memory `socket` reuses has another
/// inode number.
#[inline(always)]
fn accepted_by(socket: u64, agent: u32) -> Result<bool, ReadError> {
    // SAFETY: the value is copied out.
    let Some(mark) = (unsafe { INBOUND_SOCKETS.get(&socket) }).copied() else {
        return Ok(false);
    };
    Ok(mark.agent == agent && mark.ino == kernel::socket_ino(socket)?)
}

/// The peer a send without its own destination goes to: the socket's connected peer, unless
/// the agent accepted the connection. `Unchecked` when there is none (the kernel refuses the
/// send by itself).
#[inline(always)]
pub fn connected_peer(socket: u64, sock: u64, agent: u32) -> Result<Destination, ReadError> {
    if accepted_by(socket, agent)? {
        return Ok(Destination::Unchecked);
    }
    let (_, addr, port) = kernel::sock_peer(sock)?;
    if port == 0 {
        return Ok(Destination::Unchecked);
    }
    Ok(Destination::Peer(Peer { addr, port }, Reach::Connected))
}

/// The peer a send on an IP socket of `family` goes to when it names `name`, read the way the
/// kernel reads it: an IPv4 socket takes AF_INET and AF_UNSPEC names both as IPv4 addresses
/// (`udp_sendmsg`); an IPv6 socket takes AF_INET6, hands AF_INET to the IPv4 code, and takes
/// AF_UNSPEC as no name at all (`None`: the connected peer). Any other family is refused:
/// the kernel fails such a send anyway.
#[inline(always)]
pub fn named_peer(name: u64, family: u16) -> Result<Option<Destination>, ReadError> {
    let named = sockaddr_family(name)?;
    let ipv4 = if family == AF_INET6 {
        match named {
            AF_INET6 => false,
            AF_INET => true,
            AF_UNSPEC => return Ok(None),
            _ => return Ok(Some(Destination::Refused(MatchedBy::SocketFamily))),
        }
    } else if named == AF_INET || named == AF_UNSPEC {
        true
    } else {
        return Ok(Some(Destination::Refused(MatchedBy::SocketFamily)));
    };
    Ok(Some(Destination::Peer(
        read_peer(name, ipv4)?,
        Reach::Datagram,
    )))
}

/// The port and address of a `sockaddr_in` (`ipv4`) or `sockaddr_in6` at `address`, in
/// canonical form.
#[inline(always)]
fn read_peer(address: u64, ipv4: bool) -> Result<Peer, ReadError> {
    let port = u16::from_be(kernel::read_plain(address, 2)?);
    let addr = if ipv4 {
        mapped_ipv4(kernel::read_plain(address, 4)?)
    } else {
        kernel::read_plain(address, 8)?
    };
    Ok(Peer { addr, port })
}

/// Where a send on `socket` without a destination of its own goes (`write`, `sendfile`,
/// `splice`, a send on a connected socket).
#[inline(always)]
pub fn send_destination(socket: u64, agent: u32) -> Result<Destination, ReadError> {
    match classify(socket)? {
        SocketClass::Local
        | SocketClass::Unix {
            connection: false, ..
        } => Ok(Destination::Unchecked),
        SocketClass::Unix { sock, .. } => Ok(Destination::UnixServer(sock)),
        SocketClass::Forbidden => Ok(Destination::Refused(MatchedBy::SocketFamily)),
        SocketClass::Ip { sock, .. } => connected_peer(socket, sock, agent),
    }
}

/// Allows, checks or refuses an operation on `socket` going to `destination`.
#[inline(always)]
pub fn judge(
    kind: DenyKind,
    tag: TaskTag,
    socket: u64,
    destination: Result<Destination, ReadError>,
) -> i32 {
    match destination {
        Ok(Destination::Unchecked) => ALLOW,
        Ok(Destination::Peer(peer, reach)) => guard_peer(kind, tag, socket, &peer, reach),
        Ok(Destination::UnixServer(sock)) => unix::guard_send(tag, socket, sock),
        Ok(Destination::Refused(matched)) => refuse_peer(kind, tag, socket, &UNKNOWN_PEER, matched),
        Err(ReadError) => refuse_peer(kind, tag, socket, &UNKNOWN_PEER, MatchedBy::ReadError),
    }
}

/// The peer a `sockaddr` names, `None` for families without one (AF_UNSPEC disconnects,
/// AF_UNIX and others are judged elsewhere).
#[inline(always)]
pub fn sockaddr_peer(address: u64) -> Result<Option<Peer>, ReadError> {
    match sockaddr_family(address)? {
        family @ (AF_INET | AF_INET6) => Ok(Some(read_peer(address, family == AF_INET)?)),
        _ => Ok(None),
    }
}

/// Whether the family of a `sockaddr` is `family`.
#[inline(always)]
pub fn sockaddr_family(address: u64) -> Result<u16, ReadError> {
    kernel::read_plain(address, 0)
}

/// What `agent`'s allowlist says of `peer`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    /// An entry for its port, or for any port, allows it.
    Allowed,
    /// No entry covers it.
    Unlisted,
    /// A range covers it, but it is a cloud metadata endpoint that the range does not open
    /// (the daemon's `NET_REFUSED_METADATA` host entry, found before the range).
    Metadata,
}

/// Looks `peer` up in `agent`'s allowlist: the entry for its port first, then the one for any
/// port. The longest prefix wins within a port, so a metadata endpoint's refusing host entry
/// hides the range that covers it; an entry found for the port decides, so a refusal for the
/// port is never overridden by an any-port range (the daemon writes the refusal there too).
#[inline(always)]
pub fn listed(agent: u32, peer: &Peer) -> Listed {
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
        if let Some(&rule) = NET_ALLOW.get(&key) {
            return if rule == NET_REFUSED_METADATA {
                Listed::Metadata
            } else {
                Listed::Allowed
            };
        }
    }
    Listed::Unlisted
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
    /// A write through the socket's file (`write`, `sendfile`, `splice`): checked like a send
    /// on a connected socket; where the kernel then makes a send, that counts the grant's use.
    Written,
}

/// Allows `peer` for `tag`'s agent (allowlist, then grants) or refuses with an event. A cloud
/// metadata endpoint that only a range covers is refused like an unlisted peer, with its own
/// reason, and a grant for it opens it like one.
#[inline(always)]
pub fn guard_peer(kind: DenyKind, tag: TaskTag, socket: u64, peer: &Peer, reach: Reach) -> i32 {
    let matched = match listed(tag.agent, peer) {
        Listed::Allowed => return ALLOW,
        Listed::Unlisted => MatchedBy::NotAllowed,
        Listed::Metadata => MatchedBy::MetadataEndpoint,
    };
    if reach == Reach::Connected || reach == Reach::Written {
        if grants::use_peer(tag.agent, socket, peer).is_some() {
            // Sends on a granted connection are part of the connect that was reported.
            if reach == Reach::Connected {
                count_grant_use(kind, tag);
            }
            return ALLOW;
        }
    } else if let Some(grant) = grants::open_peer(tag.agent, socket, peer, reach == Reach::Connect)
    {
        let protocol = protocol_of(socket);
        report_grant_use(kind, tag, matched, grant, |event| {
            event.addr = peer.addr;
            event.port = peer.port;
            event.protocol = protocol;
        });
        return ALLOW;
    }
    refuse_peer(kind, tag, socket, peer, matched)
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
