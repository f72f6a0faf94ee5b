use aya_ebpf::{macros::lsm, programs::LsmContext};
use kya_common::event::{DenyKind, MatchedBy};

use crate::{
    decision::ALLOW,
    kernel,
    protect::{Denial, Object, guard_unix_dentry, refuse},
    tagging::{current_task, tag_of},
};

/// `unix_stream_connect(sock, other, newsk)`: an agent cannot connect to a Unix socket that
/// hands out authority (the Docker socket, ssh agents, `unix_deny`), matched by the socket
/// file's identity and name like a protected file.
///
/// Untagged tasks leave after one lookup; abstract and unbound sockets are allowed. Denies
/// with EPERM and an event; a read error denies too (fail closed).
#[lsm(hook = "unix_stream_connect")]
pub fn unix_stream_connect(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(3);
    if previous != ALLOW {
        return previous;
    }
    let Some(tag) = tag_of(current_task()) else {
        return ALLOW;
    };
    let other: *const u8 = ctx.arg(1);
    match kernel::unix_sock_dentry(other as u64) {
        Ok(0) => ALLOW,
        Ok(dentry) => guard_unix_dentry(dentry, tag),
        Err(_) => refuse(
            DenyKind::Unix,
            tag,
            Denial::without_rule(MatchedBy::ReadError),
            &Object::empty(),
        ),
    }
}
