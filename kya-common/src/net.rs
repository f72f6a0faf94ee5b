//! What the kernel needs to decide whether an agent may reach a network peer.

/// Bits of `NetKey` before the address: agent (32), port (16), padding (16).
pub const NET_KEY_HEADER_BITS: u32 = 64;

/// A `NET_ALLOW` value that refuses instead of allowing: the host entry of a cloud metadata
/// endpoint that one of the agent's ranges covers without naming it. Longest-prefix match finds
/// it before the range, so the range does not open the endpoint; only an entry naming the
/// address itself (which the daemon then writes instead) or a grant does. Every other value is
/// the index of the daemon's resolved rule that allows the peer.
pub const NET_REFUSED_METADATA: u32 = u32::MAX - 1;

/// Data of a `NET_ALLOW` longest-prefix-match key. The prefix always covers the agent and the
/// port exactly; the rest of the prefix is the address prefix. Port 0 stands for any port.
/// Addresses are canonical: IPv4 `a.b.c.d` is the IPv4-mapped `::ffff:a.b.c.d`, so a rule and
/// an address written either way are the same peer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NetKey {
    pub agent: u32,
    /// Host byte order; 0 = any port.
    pub port: u16,
    pub padding: u16,
    pub addr: [u8; 16],
}

/// The canonical 16-byte form of an IPv4 address (`::ffff:a.b.c.d`).
#[must_use]
pub const fn mapped_ipv4(octets: [u8; 4]) -> [u8; 16] {
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, octets[0], octets[1], octets[2], octets[3],
    ]
}

/// `DenyEvent::protocol` values.
pub mod protocol {
    pub const TCP: u16 = 6;
    pub const UDP: u16 = 17;
    /// A socket of another type (raw, packet) or an `AF_UNIX` socket.
    pub const OTHER: u16 = 0;
}

const _: () = assert!(core::mem::size_of::<NetKey>() == 24);

/// An `INBOUND_SOCKETS` value: the agent that accepted the socket and the socket's inode
/// number, which tells that socket from a later one reusing its memory.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboundSocket {
    pub agent: u32,
    pub padding: u32,
    pub ino: u64,
}

const _: () = assert!(core::mem::size_of::<InboundSocket>() == 16);

#[cfg(feature = "user")]
mod user {
    // SAFETY: integers and a byte array, explicit padding, no implicit padding.
    unsafe impl aya::Pod for super::NetKey {}
    // SAFETY: integers with an explicit padding field, no implicit padding (size asserted).
    unsafe impl aya::Pod for super::InboundSocket {}
}
