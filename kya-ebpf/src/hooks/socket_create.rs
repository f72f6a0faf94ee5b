use kya_common::event::{DenyKind, MatchedBy};

use super::agent_hook;
use crate::{
    decision::{ALLOW, DENY},
    events::report,
    net::{SOCK_DGRAM, SOCK_STREAM, ip_protocol_allowed},
    peer::{AF_INET, AF_INET6, AF_NETLINK, AF_UNIX},
};

const AF_PACKET: i32 = 17;
const SOCK_RAW: i32 = 3;
const SOCK_PACKET: i32 = 10;
/// `type` also carries SOCK_NONBLOCK and SOCK_CLOEXEC in its high bits.
const SOCK_TYPE_MASK: i32 = 0xf;

agent_hook! {
    /// `socket_create(family, type, protocol, kern)`: an agent may open Unix, netlink, TCP,
    /// UDP and ping sockets only. Raw and packet sockets write packets to any address without
    /// a `connect` or a destination to check (kind `RawSocket`); every other family (vsock,
    /// TIPC, RDS, RxRPC, Bluetooth, ...) and every other IP protocol or type (SCTP, whose
    /// associations reach address lists no `connect` names; L2TP, SMC) reaches peers that no
    /// address rule covers (kind `Socket`). Netlink talks to the local kernel, and glibc's
    /// `getaddrinfo` and `getifaddrs` need it.
    ///
    /// Sockets the kernel opens for itself are allowed. Denies with EPERM and an event.
    #[lsm(hook = "socket_create")]
    fn socket_create(ctx: LsmContext, tag: TaskTag) -> i32 {
        let family: i32 = ctx.arg(0);
        let kind: i32 = ctx.arg(1);
        let protocol: i32 = ctx.arg(2);
        let kern: i32 = ctx.arg(3);
        let kind = kind & SOCK_TYPE_MASK;
        if kern != 0 {
            return ALLOW;
        }
        let raw = kind == SOCK_RAW && family != i32::from(AF_NETLINK);
        if family == AF_PACKET || kind == SOCK_PACKET || raw {
            report(DenyKind::RawSocket, tag, MatchedBy::SocketType, |_| {});
            return DENY;
        }
        if allowed(family, kind, protocol) {
            return ALLOW;
        }
        report(DenyKind::Socket, tag, MatchedBy::SocketFamily, |event| {
            #[expect(clippy::cast_sign_loss, reason = "bits for the event")]
            let detail = ((family as u32) << 16) | (protocol as u32 & 0xffff);
            event.detail = detail;
        });
        DENY
    }
}

/// Whether an agent may open a socket of `family`, `kind` and `protocol` (raw and packet
/// sockets already refused).
#[inline(always)]
fn allowed(family: i32, kind: i32, protocol: i32) -> bool {
    if family == i32::from(AF_UNIX) || family == i32::from(AF_NETLINK) {
        return true;
    }
    if family != i32::from(AF_INET) && family != i32::from(AF_INET6) {
        return false;
    }
    // SOCK_SEQPACKET with protocol 0 on an IP socket is SCTP.
    (kind == i32::from(SOCK_STREAM) || kind == i32::from(SOCK_DGRAM))
        && u16::try_from(protocol).is_ok_and(ip_protocol_allowed)
}
