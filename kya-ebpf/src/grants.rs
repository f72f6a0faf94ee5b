//! Whether a grant lets an otherwise refused operation through.
//!
//! Consulted only after a rule refused the operation, so grants cost nothing on the common
//! path. Every check is against `CLOCK_BOOTTIME` here in the kernel: an expired grant is dead
//! whether or not the daemon has noticed. A single-use grant is spent by deleting its token
//! from `ONCE_TOKENS`; the map's bucket lock lets exactly one of several racing operations
//! delete it.
use aya_ebpf::{helpers::bpf_ktime_get_boot_ns, maps::HashMap};
use kya_common::{
    grant::{Grant, GrantedFile, GrantedSocket, flag},
    net::NetKey,
    protect::InodeRuleKey,
};

use crate::{
    maps::{FILE_GRANTS, GRANTED_FILES, GRANTED_SOCKETS, ONCE_TOKENS, PEER_GRANTS},
    peer::Peer,
};

/// The clock every grant is checked against: `CLOCK_BOOTTIME`.
#[inline(always)]
pub fn now() -> u64 {
    // SAFETY: the helper takes no arguments and cannot fail.
    unsafe { bpf_ktime_get_boot_ns() }
}

/// Takes one use of the grant at `key` if there is a live one: a single-use grant's token is
/// deleted (only the deleting operation gets the use), timed grants are left as they are.
#[inline(always)]
fn take<K>(grants: &HashMap<K, Grant>, key: &K) -> Option<Grant> {
    // SAFETY: the value is copied out.
    let grant = *unsafe { grants.get(key) }?;
    if now() >= grant.expires_ns {
        return None;
    }
    if grant.flags & flag::ONCE != 0 && ONCE_TOKENS.remove(&grant.id).is_err() {
        // Another operation consumed it first.
        return None;
    }
    Some(grant)
}

/// A live timed grant at `key`, without consuming anything: single-use grants are spent only by
/// the operation that opens a file or a connection.
#[inline(always)]
fn lasting<K>(grants: &HashMap<K, Grant>, key: &K) -> Option<Grant> {
    // SAFETY: the value is copied out.
    let grant = *unsafe { grants.get(key) }?;
    (grant.flags & flag::ONCE == 0 && now() < grant.expires_ns).then_some(grant)
}

fn file_key(agent: u32, dev: u32, ino: u64) -> InodeRuleKey {
    InodeRuleKey { agent, dev, ino }
}

fn peer_key(agent: u32, peer: &Peer) -> NetKey {
    NetKey {
        agent,
        port: peer.port,
        padding: 0,
        addr: peer.addr,
    }
}

/// The grant that lets `agent` open the file object (`dev`, `ino`) through `file`, if any. The
/// opened file is remembered so reads and mappings through it work while the grant lasts.
/// `None` if the file cannot be remembered (fail closed).
#[inline(always)]
pub fn open_file(agent: u32, file: u64, dev: u32, ino: u64) -> Option<u32> {
    let grant = take(&FILE_GRANTS, &file_key(agent, dev, ino))?;
    let granted = GrantedFile {
        grant: grant.id,
        agent,
        expires_ns: grant.expires_ns,
        ino,
        dev,
        padding: 0,
    };
    GRANTED_FILES.insert(&file, &granted, 0).ok()?;
    Some(grant.id)
}

/// The grant that lets `agent` read or map `file` (the object `dev`, `ino`): the file was opened
/// under a grant that still lasts, or a timed grant covers the object.
#[inline(always)]
pub fn use_file(agent: u32, file: u64, dev: u32, ino: u64) -> Option<u32> {
    // SAFETY: the value is copied out.
    if let Some(granted) = unsafe { GRANTED_FILES.get(&file) }
        && granted.agent == agent
        && granted.dev == dev
        && granted.ino == ino
        && now() < granted.expires_ns
    {
        return Some(granted.grant);
    }
    lasting(&FILE_GRANTS, &file_key(agent, dev, ino)).map(|grant| grant.id)
}

/// The grant that lets `agent` reach the unix socket server (`dev`, `ino`: the socket file's
/// identity, or `ABSTRACT_DEV` and the abstract name's hash), taking one use of it. Grants on
/// servers live in `FILE_GRANTS`: a socket file is an object like any file.
#[inline(always)]
pub fn open_unix(agent: u32, dev: u32, ino: u64) -> Option<Grant> {
    take(&FILE_GRANTS, &file_key(agent, dev, ino))
}

/// The grant that lets `agent` connect `socket` to `peer`, or send one datagram to it, if any.
/// A connected socket is remembered so later sends on it work while the grant lasts.
#[inline(always)]
pub fn open_peer(agent: u32, socket: u64, peer: &Peer, remember: bool) -> Option<u32> {
    let grant = take(&PEER_GRANTS, &peer_key(agent, peer))?;
    if remember {
        let granted = GrantedSocket {
            grant: grant.id,
            agent,
            expires_ns: grant.expires_ns,
            addr: peer.addr,
            port: peer.port,
            padding: [0; 6],
        };
        GRANTED_SOCKETS.insert(&socket, &granted, 0).ok()?;
    }
    Some(grant.id)
}

/// The grant that lets `agent` send on `socket`, connected to `peer`: it was connected under a
/// grant that still lasts (to this very peer), or a timed grant covers the peer.
#[inline(always)]
pub fn use_peer(agent: u32, socket: u64, peer: &Peer) -> Option<u32> {
    // SAFETY: the value is copied out.
    if let Some(granted) = unsafe { GRANTED_SOCKETS.get(&socket) }
        && granted.agent == agent
        && granted.port == peer.port
        && granted.addr == peer.addr
        && now() < granted.expires_ns
    {
        return Some(granted.grant);
    }
    lasting(&PEER_GRANTS, &peer_key(agent, peer)).map(|grant| grant.id)
}
