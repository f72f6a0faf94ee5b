use aya_ebpf::{macros::lsm, programs::LsmContext};

use crate::{
    decision::ALLOW,
    maps::INBOUND_SOCKETS,
    tagging::{current_task, tag_of},
};

/// `socket_post_create(sock, family, type, protocol, kern)`: a new socket of an agent starts
/// with no "accepted" mark, whatever socket used its memory before. Decides nothing.
#[lsm(hook = "socket_post_create")]
pub fn socket_post_create(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(5);
    if previous != ALLOW {
        return previous;
    }
    if tag_of(current_task()).is_none() {
        return ALLOW;
    }
    let socket: *const u8 = ctx.arg(0);
    // Most sockets were never marked: a failed removal is the common case.
    let _ = INBOUND_SOCKETS.remove(&(socket as u64));
    ALLOW
}
