use super::agent_hook;
use crate::{decision::ALLOW, unix::remember_server};

agent_hook! {
    /// `socket_bind(sock, address, addrlen)`: remembers that an agent bound a unix socket, so
    /// its processes may reach the server it becomes (its language servers, build daemons, its
    /// own tmux). Decides nothing; a mark that cannot be made only means that server is judged
    /// like anyone's (refused).
    #[lsm(hook = "socket_bind")]
    fn socket_bind(ctx: LsmContext, tag: TaskTag) -> i32 {
        let socket: *const u8 = ctx.arg(0);
        remember_server(socket as u64, tag.agent);
        ALLOW
    }
}
