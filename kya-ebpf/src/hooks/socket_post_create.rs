use super::agent_hook;
use crate::{
    decision::ALLOW,
    maps::{INBOUND_SOCKETS, UNIX_CLIENTS, UNIX_SERVERS},
};

agent_hook! {
    /// `socket_post_create(sock, family, type, protocol, kern)`: drops the marks (accepted,
    /// agent's server, judged client) left at a new agent socket's address by a socket that
    /// used the memory before. Such a mark never counts anyway (it holds the old socket's inode
    /// number); this keeps the maps from filling with them. Decides nothing.
    #[lsm(hook = "socket_post_create")]
    fn socket_post_create(ctx: LsmContext, _tag: TaskTag) -> i32 {
        let socket: *const u8 = ctx.arg(0);
        let socket = socket as u64;
        // Most sockets were never marked: a failed removal is the common case.
        let _ = INBOUND_SOCKETS.remove(&socket);
        let _ = UNIX_SERVERS.remove(&socket);
        let _ = UNIX_CLIENTS.remove(&socket);
        ALLOW
    }
}
