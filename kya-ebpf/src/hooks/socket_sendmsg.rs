use kya_common::event::{DenyKind, MatchedBy};

use super::agent_hook;
use crate::{
    kernel::{self, ReadError},
    net::{Destination, SS_UNCONNECTED, SocketClass, classify, connected_peer, judge, named_peer},
};

agent_hook! {
    /// `socket_sendmsg(sock, msg, size)`: every send (`send`, `sendto`, `sendmsg`, `sendmmsg`,
    /// `write` on a socket, io_uring sends) goes where the kernel will send it, and that peer
    /// must be on the agent's allowlist. A datagram socket sends to the address the send names
    /// (read as the socket's family reads it: an IPv4 socket takes an AF_UNSPEC name as an
    /// IPv4 address) or else to its connected peer; a connected stream socket sends to its
    /// peer whatever the send names, and only an unconnected one's TCP Fast Open goes to the
    /// named address. So a socket connected elsewhere (inherited, or received from another
    /// process) cannot be used. Replies on connections the agent accepted are allowed.
    ///
    /// A send on a unix stream or seqpacket socket goes to the server it is connected to,
    /// which the agent must be able to reach (see `unix`): an inherited or received socket
    /// connected to a deputy is useless. Unix datagrams are judged by `unix_may_send`; netlink
    /// is local. Sockets of any other
    /// family or protocol, and names of a family the socket cannot send to, are refused.
    /// Denies with EPERM and an event; a read error denies too (fail closed).
    #[lsm(hook = "socket_sendmsg")]
    fn socket_sendmsg(ctx: LsmContext, tag: TaskTag) -> i32 {
        let socket: *const u8 = ctx.arg(0);
        let msg: *const u8 = ctx.arg(1);
        let socket = socket as u64;
        judge(DenyKind::Send, tag, socket, destination(socket, msg as u64, tag.agent))
    }
}

/// Where this send goes.
fn destination(socket: u64, msg: u64, agent: u32) -> Result<Destination, ReadError> {
    let (sock, family, stream) = match classify(socket)? {
        SocketClass::Ip {
            sock,
            family,
            stream,
        } => (sock, family, stream),
        SocketClass::Local
        | SocketClass::Unix {
            connection: false, ..
        } => return Ok(Destination::Unchecked),
        SocketClass::Unix { sock, .. } => return Ok(Destination::UnixServer(sock)),
        SocketClass::Forbidden => return Ok(Destination::Refused(MatchedBy::SocketFamily)),
    };
    let name = kernel::msghdr_name(msg)?;
    // A stream socket uses the name only to connect (Fast Open), which the socket layer does
    // only for a socket it has never connected.
    if name != 0 && (!stream || kernel::socket_state(socket)? == SS_UNCONNECTED) {
        if let Some(named) = named_peer(name, family)? {
            return Ok(named);
        }
    }
    connected_peer(socket, sock, agent)
}
