use kya_common::event::{DenyKind, MatchedBy};

use super::agent_hook;
use crate::{
    kernel::ReadError,
    net::{Destination, Reach, SocketClass, classify, judge, sockaddr_family, sockaddr_peer},
    peer::{AF_INET, AF_INET6, AF_UNSPEC},
};

agent_hook! {
    /// `socket_connect(sock, address, addrlen)`: an agent may connect (TCP, or UDP `connect`,
    /// through any interface including io_uring) only to peers on its allowlist. IPv4 and IPv6
    /// addresses are compared in one canonical form, so an IPv4-mapped IPv6 address is the IPv4
    /// peer it names. A grant on the peer lets one connection (or connections until it expires)
    /// through.
    ///
    /// AF_UNIX connections are judged by `unix_stream_connect` and `unix_may_send`, which see
    /// the server the kernel found; netlink ones are local;
    /// AF_UNSPEC (disconnect) is allowed. A socket of a family or protocol agents may not use
    /// (one created before the process was tagged, or received) cannot connect, and neither can
    /// an IP socket to an address of another family (the kernel would fail it). Denies with
    /// EPERM and an event; an unreadable address or socket denies too (fail closed).
    #[lsm(hook = "socket_connect")]
    fn socket_connect(ctx: LsmContext, tag: TaskTag) -> i32 {
        let socket: *const u8 = ctx.arg(0);
        let address: *const u8 = ctx.arg(1);
        let socket = socket as u64;
        judge(DenyKind::Connect, tag, socket, destination(socket, address as u64))
    }
}

/// Where connecting `socket` to `address` leads.
fn destination(socket: u64, address: u64) -> Result<Destination, ReadError> {
    match classify(socket)? {
        SocketClass::Local | SocketClass::Unix { .. } => Ok(Destination::Unchecked),
        SocketClass::Forbidden => Ok(Destination::Refused(MatchedBy::SocketFamily)),
        SocketClass::Ip { .. } => match sockaddr_family(address)? {
            AF_UNSPEC => Ok(Destination::Unchecked),
            AF_INET | AF_INET6 => Ok(sockaddr_peer(address)?
                .map_or(Destination::Unchecked, |peer| {
                    Destination::Peer(peer, Reach::Connect)
                })),
            _ => Ok(Destination::Refused(MatchedBy::SocketFamily)),
        },
    }
}
