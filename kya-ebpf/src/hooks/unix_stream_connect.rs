use super::agent_hook;
use crate::{
    kernel,
    unix::{Reach, guard_server},
};

agent_hook! {
    /// `unix_stream_connect(sock, other, newsk)`: an agent may connect a stream or seqpacket
    /// socket only to a server it may reach (see `unix`): its own, one its `unix_allow` names,
    /// one on the serving list, or one a grant covers. `other` is the listening socket the
    /// kernel found at the address, so the server is judged by what the kernel will connect
    /// to, whatever path or name led there. The connecting socket is remembered so its sends
    /// need no second judgement.
    ///
    /// Denies with EPERM and an event; a read error denies too (fail closed).
    #[lsm(hook = "unix_stream_connect")]
    fn unix_stream_connect(ctx: LsmContext, tag: TaskTag) -> i32 {
        let sock: *const u8 = ctx.arg(0);
        let other: *const u8 = ctx.arg(1);
        let client = kernel::sock_socket(sock as u64).unwrap_or(0);
        guard_server(tag, other as u64, client, Reach::Connect, other as u64)
    }
}
