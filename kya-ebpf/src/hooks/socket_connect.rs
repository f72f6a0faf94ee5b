use kya_common::event::{DenyKind, MatchedBy};

use super::agent_hook;
use crate::{
    decision::ALLOW,
    kernel::ReadError,
    net::{Reach, guard_peer, refuse_peer, sockaddr_family, sockaddr_peer},
    peer::{AF_INET, AF_INET6, UNKNOWN_PEER},
};

agent_hook! {
    /// `socket_connect(sock, address, addrlen)`: an agent may connect (TCP, or UDP `connect`,
    /// through any interface including io_uring) only to peers on its allowlist. IPv4 and IPv6
    /// addresses are compared in one canonical form, so an IPv4-mapped IPv6 address is the IPv4
    /// peer it names. A grant on the peer lets one connection (or connections until it expires)
    /// through.
    ///
    /// AF_UNIX connections are judged by `unix_stream_connect`; AF_UNSPEC (disconnect) is
    /// allowed. Denies with EPERM and an event; an unreadable address denies too (fail closed).
    #[lsm(hook = "socket_connect")]
    fn socket_connect(ctx: LsmContext, tag: TaskTag) -> i32 {
        let socket: *const u8 = ctx.arg(0);
        let address: *const u8 = ctx.arg(1);
        let socket = socket as u64;
        let peer = sockaddr_family(address as u64).and_then(|family| {
            if family == AF_INET || family == AF_INET6 {
                sockaddr_peer(address as u64)
            } else {
                Ok(None)
            }
        });
        match peer {
            Ok(Some(peer)) => guard_peer(DenyKind::Connect, tag, socket, &peer, Reach::Connect),
            Ok(None) => ALLOW,
            Err(ReadError) => refuse_peer(
                DenyKind::Connect,
                tag,
                socket,
                &UNKNOWN_PEER,
                MatchedBy::ReadError,
            ),
        }
    }
}
