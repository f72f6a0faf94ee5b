use aya_ebpf::bindings::BPF_ANY;

use super::agent_hook;
use crate::{decision::ALLOW, maps::INBOUND_SOCKETS};

agent_hook! {
    /// `socket_accept(sock, newsock)`: remembers that an agent accepted `newsock`, so replies
    /// on it are not taken for outbound traffic. Decides nothing.
    #[lsm(hook = "socket_accept")]
    fn socket_accept(ctx: LsmContext, tag: TaskTag) -> i32 {
        let newsock: *const u8 = ctx.arg(1);
        // An LRU map never refuses an insert; failure here would only mean a later reply is
        // checked.
        let _ = INBOUND_SOCKETS.insert(&(newsock as u64), &tag.agent, u64::from(BPF_ANY));
        ALLOW
    }
}
