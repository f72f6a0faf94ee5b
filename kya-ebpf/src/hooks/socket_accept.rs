use aya_ebpf::bindings::BPF_ANY;
use kya_common::net::InboundSocket;

use super::agent_hook;
use crate::{decision::ALLOW, kernel, maps::INBOUND_SOCKETS};

agent_hook! {
    /// `socket_accept(sock, newsock)`: remembers that an agent accepted `newsock`, so replies
    /// on it are not taken for outbound traffic. The mark holds the new socket's inode number,
    /// so it covers that socket only, never a later one that reuses its memory. Decides
    /// nothing; a mark that cannot be made only means replies are checked (fail closed).
    #[lsm(hook = "socket_accept")]
    fn socket_accept(ctx: LsmContext, tag: TaskTag) -> i32 {
        let newsock: *const u8 = ctx.arg(1);
        let newsock = newsock as u64;
        let Ok(ino) = kernel::socket_ino(newsock) else {
            return ALLOW;
        };
        let mark = InboundSocket {
            agent: tag.agent,
            padding: 0,
            ino,
        };
        // An LRU map never refuses an insert; failure here would only mean a later reply is
        // checked.
        let _ = INBOUND_SOCKETS.insert(&newsock, &mark, u64::from(BPF_ANY));
        ALLOW
    }
}
