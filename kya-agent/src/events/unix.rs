//! What a unix socket event names: the server's socket, as a human recognises it (its path or
//! `@name`, from the address the server bound), and the server process where the kernel knows
//! it.
use kya_common::{
    event::DenyEvent,
    protect::{ABSTRACT_DEV, UNIX_PATH_MAX},
};

use crate::{config::SocketAddress, procfs, text::AgentText};

/// Why a unix socket is refused when no rule names it: the allow-list, in the kernel's order.
pub const NOT_ALLOWED: &str = "the server is not the agent's own, not in its network.unix_allow, \
                               not a built-in serving socket, and no grant covers it";

/// The server side of a unix socket event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// `/path` or `@name`; the socket file's name when the bound address is relative or
    /// unknown.
    pub socket: Option<AgentText>,
    pub pid: Option<u32>,
    /// The server's executable, read now from `/proc/PID/exe`.
    pub exe: Option<AgentText>,
}

impl Server {
    /// The server named by `event` (of kind `Unix`), `name` being the socket file's name.
    #[must_use]
    pub fn of(event: &DenyEvent, name: &[u8]) -> Self {
        let pid = (event.peer_pid != 0).then_some(event.peer_pid);
        Self {
            socket: socket_label(event, name),
            pid,
            exe: pid.and_then(procfs::exe_path).map(AgentText::from),
        }
    }
}

/// `/path` or `@name` from the bound address; otherwise the socket file's name.
fn socket_label(event: &DenyEvent, name: &[u8]) -> Option<AgentText> {
    let len = usize::try_from(event.sun_path_len)
        .unwrap_or(UNIX_PATH_MAX)
        .min(UNIX_PATH_MAX);
    match SocketAddress::from_sun_path(&event.sun_path[..len]) {
        Some(address @ SocketAddress::Abstract(_)) => Some(address.text()),
        Some(address @ SocketAddress::Path(_)) if address.is_absolute() => Some(address.text()),
        _ => (!name.is_empty()).then(|| AgentText::from_bytes(name)),
    }
}

/// Whether the event's socket is an abstract one (its `dev` and `ino` are then no file's).
#[must_use]
pub fn is_abstract(event: &DenyEvent) -> bool {
    event.dev == ABSTRACT_DEV
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(sun_path: &[u8], peer_pid: u32) -> DenyEvent {
        // SAFETY: a DenyEvent is integers and byte arrays; all zeroes is a valid one.
        let mut event: DenyEvent = unsafe { std::mem::zeroed() };
        event.sun_path[..sun_path.len()].copy_from_slice(sun_path);
        event.sun_path_len = u32::try_from(sun_path.len()).unwrap();
        event.peer_pid = peer_pid;
        event
    }

    #[test]
    fn sockets_are_named_by_their_bound_address() {
        let shown = |server: Server| server.socket.map(|socket| socket.to_string());
        let server = Server::of(&event(b"/run/user/1000/bus\0", 0), b"bus");
        assert_eq!((server.pid, server.exe.clone()), (None, None));
        assert_eq!(shown(server).as_deref(), Some("/run/user/1000/bus"));
        let server = Server::of(&event(b"\0tmux-1000\x07", 0), b"");
        assert_eq!(shown(server).as_deref(), Some("@tmux-1000\\x07"));
        let server = Server::of(&event(b"/tmp/\x1b[2J\xff.sock\0", 0), b"");
        assert_eq!(shown(server).as_deref(), Some("/tmp/\\x1b[2J\\xff.sock"));
        let server = Server::of(&event(b"relative.sock", 0), b"relative.sock");
        assert_eq!(
            shown(server).as_deref(),
            Some("relative.sock"),
            "the file's name"
        );
        assert_eq!(Server::of(&event(b"", 0), b"").socket, None);
    }

    #[test]
    fn the_server_process_is_named_while_it_runs() {
        let me = std::process::id();
        let server = Server::of(&event(b"/tmp/x", me), b"x");
        assert_eq!(server.pid, Some(me));
        assert_eq!(
            server.exe,
            std::env::current_exe().ok().map(AgentText::from)
        );
    }
}
