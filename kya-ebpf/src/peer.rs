//! A network peer in the one canonical form every check compares, and the address families
//! that have one. The lowest of the network modules: it uses none of them.

pub const AF_UNSPEC: u16 = 0;
pub const AF_UNIX: u16 = 1;
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;
pub const AF_NETLINK: u16 = 16;

/// A network peer in canonical form: an IPv4 address is stored IPv4-mapped.
#[derive(Clone, Copy)]
pub struct Peer {
    pub addr: [u8; 16],
    pub port: u16,
}

/// A peer for events about errors, where the address could not be read.
pub const UNKNOWN_PEER: Peer = Peer {
    addr: [0; 16],
    port: 0,
};
