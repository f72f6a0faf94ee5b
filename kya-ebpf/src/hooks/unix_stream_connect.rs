use super::agent_hook;
use crate::{kernel, protect::guard_unix_dentry};

agent_hook! {
    /// `unix_stream_connect(sock, other, newsk)`: an agent cannot connect to a Unix socket that
    /// hands out authority (the Docker socket, ssh agents, `unix_deny`), matched by the socket
    /// file's identity and name like a protected file.
    ///
    /// Abstract and unbound sockets are allowed. Denies with EPERM and an event; a read error
    /// denies too (fail closed).
    #[lsm(hook = "unix_stream_connect")]
    fn unix_stream_connect(ctx: LsmContext, tag: TaskTag) -> i32 {
        let other: *const u8 = ctx.arg(1);
        guard_unix_dentry(kernel::unix_sock_dentry(other as u64), tag)
    }
}
