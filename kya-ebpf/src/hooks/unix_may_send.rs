use super::agent_hook;
use crate::{
    kernel,
    unix::{Reach, guard_server, refuse_unread},
};

agent_hook! {
    /// `unix_may_send(sock, other)`: the datagram counterpart of `unix_stream_connect`, for
    /// every datagram (`send`, `sendto`, `sendmsg`, `write`, on connected sockets too) and for
    /// `connect` on a datagram socket. `other` is the receiving socket.
    ///
    /// Denies with EPERM and an event; a read error denies too (fail closed).
    #[lsm(hook = "unix_may_send")]
    fn unix_may_send(ctx: LsmContext, tag: TaskTag) -> i32 {
        let sock: *const u8 = ctx.arg(0);
        let other: *const u8 = ctx.arg(1);
        match kernel::socket_sock(other as u64) {
            Ok(server) => guard_server(tag, server, sock as u64, Reach::Datagram, server),
            Err(_) => refuse_unread(tag),
        }
    }
}
