use kya_common::event::{DenyKind, MatchedBy};

use super::agent_hook;
use crate::{
    decision::ALLOW,
    kernel::{self, ReadError},
    maps::INBOUND_SOCKETS,
    net::{Reach, guard_peer, refuse_peer, sockaddr_peer},
    peer::{AF_INET, AF_INET6, Peer, UNKNOWN_PEER},
};

agent_hook! {
    /// `socket_sendmsg(sock, msg, size)`: every send (`send`, `sendto`, `sendmsg`, `sendmmsg`,
    /// `write` on a socket, io_uring sends). With a destination address (UDP without
    /// `connect`, TCP Fast Open) the address must be on the agent's allowlist; without one, the
    /// socket's own peer must be, so a socket connected elsewhere (inherited, or received from
    /// another process) cannot be used. Replies on connections the agent accepted are allowed.
    ///
    /// Non-IP sockets are judged by the AF_UNIX hooks. Denies with EPERM and an event; a read
    /// error denies too (fail closed).
    #[lsm(hook = "socket_sendmsg")]
    fn socket_sendmsg(ctx: LsmContext, tag: TaskTag) -> i32 {
        let socket: *const u8 = ctx.arg(0);
        let msg: *const u8 = ctx.arg(1);
        let socket = socket as u64;
        match destination(socket, msg as u64, tag.agent) {
            Ok(Some((peer, reach))) => guard_peer(DenyKind::Send, tag, socket, &peer, reach),
            Ok(None) => ALLOW,
            Err(ReadError) => refuse_peer(
                DenyKind::Send,
                tag,
                socket,
                &UNKNOWN_PEER,
                MatchedBy::ReadError,
            ),
        }
    }
}

/// The peer this send goes to, if it is an IP peer the allowlist must cover.
fn destination(socket: u64, msg: u64, agent: u32) -> Result<Option<(Peer, Reach)>, ReadError> {
    let name = kernel::msghdr_name(msg)?;
    if name != 0 {
        return Ok(sockaddr_peer(name)?.map(|peer| (peer, Reach::Datagram)));
    }
    // SAFETY: the value is copied out.
    if unsafe { INBOUND_SOCKETS.get(&socket) }.is_some_and(|owner| *owner == agent) {
        return Ok(None);
    }
    let (family, addr, port) = kernel::sock_peer(kernel::socket_sock(socket)?)?;
    if (family != AF_INET && family != AF_INET6) || port == 0 {
        // Not an IP socket, or not connected: the kernel refuses the send by itself.
        return Ok(None);
    }
    Ok(Some((Peer { addr, port }, Reach::Connected)))
}
