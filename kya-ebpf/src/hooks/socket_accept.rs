use aya_ebpf::{bindings::BPF_ANY, macros::lsm, programs::LsmContext};

use crate::{
    decision::ALLOW,
    maps::INBOUND_SOCKETS,
    tagging::{current_task, tag_of},
};

/// `socket_accept(sock, newsock)`: remembers that an agent accepted `newsock`, so replies on it
/// are not taken for outbound traffic. Decides nothing.
#[lsm(hook = "socket_accept")]
pub fn socket_accept(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(2);
    if previous != ALLOW {
        return previous;
    }
    let Some(tag) = tag_of(current_task()) else {
        return ALLOW;
    };
    let newsock: *const u8 = ctx.arg(1);
    // An LRU map never refuses an insert; failure here would only mean a later reply is checked.
    let _ = INBOUND_SOCKETS.insert(&(newsock as u64), &tag.agent, u64::from(BPF_ANY));
    ALLOW
}
