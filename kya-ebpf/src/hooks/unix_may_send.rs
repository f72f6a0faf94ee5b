use super::agent_hook;
use crate::{kernel, protect::guard_unix_dentry};

agent_hook! {
    /// `unix_may_send(sock, other)`: the datagram counterpart of `unix_stream_connect`, for
    /// `sendto` and `connect` on AF_UNIX datagram sockets.
    ///
    /// Abstract and unbound sockets are allowed. Denies with EPERM and an event; a read error
    /// denies too (fail closed).
    #[lsm(hook = "unix_may_send")]
    fn unix_may_send(ctx: LsmContext, tag: TaskTag) -> i32 {
        let other: *const u8 = ctx.arg(1);
        let dentry = kernel::socket_sock(other as u64).and_then(kernel::unix_sock_dentry);
        guard_unix_dentry(dentry, tag)
    }
}
