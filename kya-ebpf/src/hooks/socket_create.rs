use aya_ebpf::{macros::lsm, programs::LsmContext};
use kya_common::event::{DenyKind, MatchedBy};

use crate::{
    decision::{ALLOW, DENY},
    events::report,
    tagging::{current_task, tag_of},
};

const AF_PACKET: i32 = 17;
const SOCK_RAW: i32 = 3;
const SOCK_PACKET: i32 = 10;
/// `type` also carries SOCK_NONBLOCK and SOCK_CLOEXEC in its high bits.
const SOCK_TYPE_MASK: i32 = 0xf;

/// `socket_create(family, type, protocol, kern)`: an agent cannot open raw or packet sockets,
/// which write packets to any address without a `connect` or a destination to check.
///
/// Untagged tasks and sockets the kernel opens for itself are allowed. Denies with EPERM and
/// an event.
#[lsm(hook = "socket_create")]
pub fn socket_create(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(4);
    if previous != ALLOW {
        return previous;
    }
    let Some(tag) = tag_of(current_task()) else {
        return ALLOW;
    };
    let family: i32 = ctx.arg(0);
    let kind: i32 = ctx.arg(1);
    let kern: i32 = ctx.arg(3);
    let kind = kind & SOCK_TYPE_MASK;
    if kern != 0 || (family != AF_PACKET && kind != SOCK_RAW && kind != SOCK_PACKET) {
        return ALLOW;
    }
    report(DenyKind::RawSocket, tag, MatchedBy::SocketType, |_| {});
    DENY
}
