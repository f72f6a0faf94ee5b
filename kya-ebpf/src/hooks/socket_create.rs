use kya_common::event::{DenyKind, MatchedBy};

use super::agent_hook;
use crate::{
    decision::{ALLOW, DENY},
    events::report,
};

const AF_PACKET: i32 = 17;
const SOCK_RAW: i32 = 3;
const SOCK_PACKET: i32 = 10;
/// `type` also carries SOCK_NONBLOCK and SOCK_CLOEXEC in its high bits.
const SOCK_TYPE_MASK: i32 = 0xf;

agent_hook! {
    /// `socket_create(family, type, protocol, kern)`: an agent cannot open raw or packet
    /// sockets, which write packets to any address without a `connect` or a destination to
    /// check.
    ///
    /// Sockets the kernel opens for itself are allowed. Denies with EPERM and an event.
    #[lsm(hook = "socket_create")]
    fn socket_create(ctx: LsmContext, tag: TaskTag) -> i32 {
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
}
