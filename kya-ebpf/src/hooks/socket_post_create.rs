use super::agent_hook;
use crate::{decision::ALLOW, maps::INBOUND_SOCKETS};

agent_hook! {
    /// `socket_post_create(sock, family, type, protocol, kern)`: drops an "accepted" mark
    /// left at a new agent socket's address by a socket that used the memory before. Such a
    /// mark never counts anyway (it holds the old socket's inode number); this keeps the map
    /// from filling with them. Decides nothing.
    #[lsm(hook = "socket_post_create")]
    fn socket_post_create(ctx: LsmContext, _tag: TaskTag) -> i32 {
        let socket: *const u8 = ctx.arg(0);
        // Most sockets were never marked: a failed removal is the common case.
        let _ = INBOUND_SOCKETS.remove(&(socket as u64));
        ALLOW
    }
}
