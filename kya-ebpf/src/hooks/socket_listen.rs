use super::agent_hook;
use crate::{decision::ALLOW, unix::remember_server};

agent_hook! {
    /// `socket_listen(sock, backlog)`: remembers that an agent made a unix socket listen (one
    /// it bound, or one bound before and handed to it), so its processes may connect to it.
    /// Decides nothing, like `socket_bind`.
    #[lsm(hook = "socket_listen")]
    fn socket_listen(ctx: LsmContext, tag: TaskTag) -> i32 {
        let socket: *const u8 = ctx.arg(0);
        remember_server(socket as u64, tag.agent);
        ALLOW
    }
}
