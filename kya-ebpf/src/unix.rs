//! Whether an agent may reach the server of a unix socket, and refusing (with an event) when it
//! may not.
//!
//! An untagged server that acts on requests (a tmux server, systemd, a D-Bus service, a
//! credential cache) would act for the agent outside its tag, so the rule is an allowlist. In
//! order, for the server's socket:
//! 1. the agent's `unix_allow` names it: allowed;
//! 2. a credential socket (the catalogue's, the agent's `unix_deny`, an ssh agent's name):
//!    refused, whatever follows, unless a grant covers it;
//! 3. a process of the same agent bound it, made it listen or accepted the connection: allowed;
//! 4. it is on the built-in list of sockets that serve without acting for their callers (the
//!    journal, name services): allowed;
//! 5. a grant covers it: allowed;
//! 6. anything else is refused.
//!
//! A server is known by its bound address, as the kernel resolved it: the socket file's
//! identity, or an abstract name's hash. Unbound sockets are the other end of a `socketpair`
//! (or a client, when the agent replies on a connection it accepted): allowed.
use kya_common::{
    event::{DenyEvent, DenyKind, MatchedBy},
    grant::UnixClient,
    net::InboundSocket,
    protect::{ABSTRACT_DEV, NAME_LEN, abstract_name_hash, flag, name_hash},
    tag::TaskTag,
};

use crate::{
    decision::{ALLOW, DENY},
    events::{count_grant_use, report, report_grant_use},
    grants,
    kernel::{self, ReadError},
    maps::{INBOUND_SOCKETS, UNIX_CLIENTS, UNIX_SERVERS},
    peer::AF_UNIX,
    protect::{Denial, socket_rule},
};

/// How an operation reaches a server, which decides what a grant's use is and what the server's
/// process is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// `connect` on a stream or seqpacket socket: the server is the listening socket.
    Connect,
    /// A datagram, or a datagram socket's `connect`: the server is the receiving socket.
    Datagram,
    /// A send on a stream or seqpacket socket the agent did not connect itself (inherited or
    /// received): the server is the connection's other end.
    Send,
}

/// A server's socket, as far as the rules are concerned.
struct Server {
    /// The socket file's identity, or `ABSTRACT_DEV` and the abstract name's hash.
    dev: u32,
    ino: u64,
    /// The socket file's dentry; 0 for an abstract socket.
    dentry: u64,
    /// Where the bound address's `sun_path` is, and how many of its bytes are used (for events).
    sun_path: u64,
    used: usize,
}

/// The address `sock` is bound to; `None` if it is not bound.
#[inline(always)]
fn read_server(sock: u64) -> Result<Option<Server>, ReadError> {
    let dentry = kernel::unix_sock_dentry(sock)?;
    let Some((sun_path, used)) = kernel::unix_sun_path(sock)? else {
        return Ok(None);
    };
    if dentry != 0 {
        let Some((ino, dev)) = kernel::dentry_identity(dentry)? else {
            return Err(ReadError);
        };
        return Ok(Some(Server {
            dev,
            ino,
            dentry,
            sun_path,
            used,
        }));
    }
    let name = kernel::sun_path_bytes(sun_path)?;
    // The length is read again for the hash, as a value of its own: the hash loop's bound
    // checks then teach the verifier nothing about `used`, whose exact range the event's copy
    // needs, so the paths out of the loop stay one.
    let Some((_, name_len)) = kernel::unix_sun_path(sock)? else {
        return Err(ReadError);
    };
    Ok(Some(Server {
        dev: ABSTRACT_DEV,
        ino: abstract_name_hash(&name, name_len),
        dentry: 0,
        sun_path,
        used,
    }))
}

/// What the rules say about a server, before grants.
enum Verdict {
    Allow,
    /// Refused unless a grant covers the server.
    Refuse(Denial),
}

/// Rules 1 to 4 and 6 of the module's list.
#[inline(always)]
fn decide(agent: u32, server_sock: u64, server: &Server) -> Result<Verdict, ReadError> {
    let mut serving = false;
    let mut name = [0; NAME_LEN];
    let entry = if server.dentry == 0 {
        None
    } else {
        kernel::dentry_name(server.dentry, &mut name)?;
        let parent = kernel::dentry_parent(server.dentry)?;
        Some((kernel::dentry_ino(parent)?, name_hash(&name)))
    };
    if let Some((rule, matched)) = socket_rule(agent, server.dev, server.ino, entry) {
        if rule.flags & flag::ALLOW != 0 {
            return Ok(Verdict::Allow);
        }
        if rule.flags & (flag::FILE | flag::TREE) != 0 {
            return Ok(Verdict::Refuse(Denial {
                matched,
                rule: rule.rule,
                level: 0,
                writes_only: false,
                foothold: false,
            }));
        }
        serving = rule.flags & flag::SERVES != 0;
    }
    if server.dentry != 0 {
        let mut dir = [0; NAME_LEN];
        kernel::dentry_name(kernel::dentry_parent(server.dentry)?, &mut dir)?;
        if is_ssh_agent_socket_name(&dir, &name) {
            return Ok(Verdict::Refuse(Denial::without_rule(MatchedBy::SshAgent)));
        }
    }
    if serving || agents_own(agent, server_sock)? {
        return Ok(Verdict::Allow);
    }
    Ok(Verdict::Refuse(Denial::without_rule(MatchedBy::NotAllowed)))
}

/// `kya_common::protect::is_ssh_agent_socket` for the kernel's NUL-terminated name buffers:
/// an exact name is a prefix that includes the terminating NUL, which needs no loop to find.
#[inline(always)]
fn is_ssh_agent_socket_name(dir: &[u8; NAME_LEN], name: &[u8; NAME_LEN]) -> bool {
    (dir.starts_with(b"ssh-") && name.starts_with(b"agent."))
        || name.starts_with(b"ssh-agent.socket\0")
        || name.starts_with(b"S.gpg-agent.ssh\0")
        || (dir.starts_with(b"keyring\0") && name.starts_with(b"ssh\0"))
}

/// Whether the server's socket is `agent`'s: a process of the agent bound it or made it listen
/// (`UNIX_SERVERS`), or accepted the connection it is the server's end of (`INBOUND_SOCKETS`).
/// Each mark must be this very socket's (same inode number). A connection not yet accepted has
/// no socket of its own and counts as no one's.
#[inline(always)]
fn agents_own(agent: u32, server_sock: u64) -> Result<bool, ReadError> {
    let socket = kernel::sock_socket(server_sock)?;
    if socket == 0 {
        return Ok(false);
    }
    // SAFETY: the values are copied out.
    let mark = unsafe { UNIX_SERVERS.get(&socket) }
        .or_else(|| unsafe { INBOUND_SOCKETS.get(&socket) })
        .copied();
    match mark {
        Some(mark) if mark.agent == agent => Ok(mark.ino == kernel::socket_ino(socket)?),
        _ => Ok(false),
    }
}

/// Allows `tag`'s agent to reach the server `server_sock` through its socket `client` (a
/// `struct socket`, 0 if unknown), or refuses with an event. `pid_sock` is the socket whose
/// recorded peer process is the server's (for the event).
#[inline(always)]
pub fn guard_server(
    tag: TaskTag,
    server_sock: u64,
    client: u64,
    reach: Reach,
    pid_sock: u64,
) -> i32 {
    let server = match read_server(server_sock) {
        Ok(Some(server)) => server,
        Ok(None) => return ALLOW,
        Err(ReadError) => return refuse_unread(tag),
    };
    match decide(tag.agent, server_sock, &server) {
        Ok(Verdict::Allow) => {
            if reach == Reach::Connect {
                remember(client, tag.agent, &server, 0, u64::MAX);
            }
            ALLOW
        }
        Ok(Verdict::Refuse(denial)) => granted_or_refused(tag, &server, client, denial, pid_sock),
        Err(ReadError) => refuse_unread(tag),
    }
}

/// A grant on the server lets the operation through (reported, and remembered for the
/// client's later sends), or the operation is refused.
#[inline(always)]
fn granted_or_refused(
    tag: TaskTag,
    server: &Server,
    client: u64,
    denial: Denial,
    pid_sock: u64,
) -> i32 {
    if continues_grant(client, tag.agent, server) {
        count_grant_use(DenyKind::Unix, tag);
        return ALLOW;
    }
    if let Some(grant) = grants::open_unix(tag.agent, server.dev, server.ino) {
        remember(client, tag.agent, server, grant.id, grant.expires_ns);
        report_grant_use(DenyKind::Unix, tag, denial.matched, grant.id, |event| {
            fill(event, server, denial, pid_sock);
        });
        return ALLOW;
    }
    report(DenyKind::Unix, tag, denial.matched, |event| {
        fill(event, server, denial, pid_sock);
    });
    DENY
}

/// Whether `client` already reaches this server under a grant that still lasts (a datagram
/// socket's later sends after the grant's one use).
#[inline(always)]
fn continues_grant(client: u64, agent: u32, server: &Server) -> bool {
    // SAFETY: the value is copied out.
    let Some(remembered) = (unsafe { UNIX_CLIENTS.get(&client) }).copied() else {
        return false;
    };
    remembered.grant != 0
        && remembered.agent == agent
        && remembered.server_dev == server.dev
        && remembered.server_ino == server.ino
        && grants::now() < remembered.expires_ns
        && kernel::socket_ino(client).is_ok_and(|ino| ino == remembered.ino)
}

/// Remembers that `agent` reached `server` through `client`, under `grant` (0 for none) until
/// `expires_ns`. An LRU map never refuses; a socket that cannot be remembered is judged again
/// on its sends.
#[inline(always)]
fn remember(client: u64, agent: u32, server: &Server, grant: u32, expires_ns: u64) {
    let Ok(ino) = kernel::socket_ino(client) else {
        return;
    };
    let remembered = UnixClient {
        grant,
        agent,
        expires_ns,
        ino,
        server_ino: server.ino,
        server_dev: server.dev,
        padding: 0,
    };
    let _ = UNIX_CLIENTS.insert(&client, &remembered, 0);
}

/// Allows a send on the connected stream or seqpacket socket `socket` (its `struct sock` is
/// `sock`) when the agent connected it itself to a server it could reach (while a grant it was
/// connected under lasts), accepted it (a reply), or when its server may be reached now.
#[inline(always)]
pub fn guard_send(tag: TaskTag, socket: u64, sock: u64) -> i32 {
    // SAFETY: the values are copied out.
    let remembered = unsafe { UNIX_CLIENTS.get(&socket) }.copied();
    let accepted = unsafe { INBOUND_SOCKETS.get(&socket) }.copied();
    let Ok(ino) = kernel::socket_ino(socket) else {
        return refuse_unread(tag);
    };
    if let Some(remembered) = remembered
        && remembered.agent == tag.agent
        && remembered.ino == ino
        && grants::now() < remembered.expires_ns
    {
        if remembered.grant != 0 {
            count_grant_use(DenyKind::Unix, tag);
        }
        return ALLOW;
    }
    if accepted.is_some_and(|mark| mark.agent == tag.agent && mark.ino == ino) {
        return ALLOW;
    }
    match kernel::unix_peer(sock) {
        // Not connected: the kernel refuses the send by itself.
        Ok(0) => ALLOW,
        // The server's process is recorded on the client's own end.
        Ok(peer) => guard_server(tag, peer, socket, Reach::Send, sock),
        Err(ReadError) => refuse_unread(tag),
    }
}

/// Remembers that an agent bound `socket` or made it listen, if it is a unix socket: its
/// server is the agent's. A socket that cannot be read is not remembered, so its clients are
/// judged like anyone's (fail closed).
#[inline(always)]
pub fn remember_server(socket: u64, agent: u32) {
    let Ok(sock) = kernel::socket_sock(socket) else {
        return;
    };
    if !kernel::sock_family(sock).is_ok_and(|family| family == AF_UNIX) {
        return;
    }
    let Ok(ino) = kernel::socket_ino(socket) else {
        return;
    };
    let mark = InboundSocket {
        agent,
        padding: 0,
        ino,
    };
    let _ = UNIX_SERVERS.insert(&socket, &mark, 0);
}

/// Counts, reports and refuses an operation whose server could not be read (fail closed).
#[inline(always)]
pub fn refuse_unread(tag: TaskTag) -> i32 {
    report(DenyKind::Unix, tag, MatchedBy::ReadError, |_| {});
    DENY
}

/// The event's description of the server.
#[inline(always)]
fn fill(event: &mut DenyEvent, server: &Server, denial: Denial, pid_sock: u64) {
    event.rule = denial.rule;
    event.dev = server.dev;
    event.ino = server.ino;
    if server.dentry != 0 {
        let _ = kernel::dentry_name(server.dentry, &mut event.name);
    }
    if kernel::read_sun_path(server.sun_path, server.used, &mut event.sun_path).is_ok() {
        // `used` is at most `UNIX_PATH_MAX`.
        event.sun_path_len = server.used as u32;
    }
    event.peer_pid = kernel::sock_peer_pid(pid_sock).unwrap_or(0);
}
