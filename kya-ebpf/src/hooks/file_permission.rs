use kya_common::event::{DenyKind, MatchedBy};

use super::agent_hook;
use crate::{
    facilities,
    kernel::{self, ReadError},
    net::{Destination, Reach, judge, refuse_peer, send_destination},
    peer::UNKNOWN_PEER,
    protect::guard_file,
};

/// `MAY_WRITE` and `MAY_APPEND` in the mask: the access writes.
const MAY_WRITE: i32 = 0x2;
const MAY_APPEND: i32 = 0x8;

agent_hook! {
    /// `file_permission(file, mask)`: every read or write through a descriptor (read, pread,
    /// readv, sendfile, splice, copy_file_range, io_uring and AIO reads all pass here), so a
    /// descriptor an agent inherited, received over a socket or opened before it was tagged is
    /// useless on a protected file, on the kernel facilities `file_open` refuses and on another
    /// process's command line.
    ///
    /// A write into a socket (`write`, and `sendfile`, `splice` and `vmsplice` into a socket,
    /// which on 6.1 reach the network through `sendpage` without `socket_sendmsg`) is judged
    /// like a send on a connected socket: its peer must be allowed.
    ///
    /// A file in a private key directory (`~/.ssh`, `~/.gnupg`) is judged here by identity,
    /// not by name (`protect::check`): this hook is at the 512-byte stack limit on 6.1, and
    /// the daemon registers every such private file by identity.
    ///
    /// Denies with EPERM and an event; a kernel read error denies too (fail closed).
    #[lsm(hook = "file_permission")]
    fn file_permission(ctx: LsmContext, tag: TaskTag) -> i32 {
        let file: *const u8 = ctx.arg(0);
        let mask: i32 = ctx.arg(1);
        let file = file as u64;
        let writes = mask & (MAY_WRITE | MAY_APPEND) != 0;
        if writes {
            match kernel::file_socket(file) {
                Ok(Some(socket)) => {
                    let destination = send_destination(socket, tag.agent).map(|to| match to {
                        Destination::Peer(peer, _) => Destination::Peer(peer, Reach::Written),
                        other => other,
                    });
                    return judge(DenyKind::Send, tag, socket, destination);
                }
                Ok(None) => {}
                Err(ReadError) => {
                    return refuse_peer(DenyKind::Send, tag, 0, &UNKNOWN_PEER, MatchedBy::ReadError);
                }
            }
        }
        if let Some(verdict) =
            facilities::guard_file_or_cmdline(file, tag, DenyKind::FileAccess, writes)
        {
            return verdict;
        }
        guard_file(file, tag, DenyKind::FileAccess, writes, false)
    }
}
