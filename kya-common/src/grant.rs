//! Grants: a human approved that one agent may reach one resource (a file object or a network
//! peer) once, or until a time. The kernel checks expiry and consumes single-use grants itself,
//! so a grant ends on time even when the daemon is frozen or gone.

/// `Grant::flags` bits.
pub mod flag {
    /// The grant lets exactly one operation through; the kernel deletes it when it is used.
    pub const ONCE: u32 = 1 << 0;
}

/// Value of `FILE_GRANTS` (keyed by `protect::InodeRuleKey`: agent, device, inode) and of
/// `PEER_GRANTS` (keyed by `net::NetKey`: agent, port, address; exact, no prefixes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The daemon's grant id, reported with every use.
    pub id: u32,
    /// `flag` bits.
    pub flags: u32,
    /// `CLOCK_BOOTTIME` nanoseconds at which the grant stops working. Boot time keeps counting
    /// while the machine sleeps and cannot be set, so no clock change extends a grant.
    pub expires_ns: u64,
}

/// Value of `GRANTED_FILES`, keyed by `struct file` address: a file an agent opened under a
/// grant, whose reads and mappings are allowed while the grant lasts. The identity is checked
/// again on every use, so a recycled `struct file` address grants nothing.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantedFile {
    pub grant: u32,
    pub agent: u32,
    pub expires_ns: u64,
    pub ino: u64,
    pub dev: u32,
    pub padding: u32,
}

/// Value of `GRANTED_SOCKETS`, keyed by `struct socket` address: a socket an agent connected
/// under a grant, whose sends are allowed while the grant lasts and only to that peer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantedSocket {
    pub grant: u32,
    pub agent: u32,
    pub expires_ns: u64,
    pub addr: [u8; 16],
    pub port: u16,
    pub padding: [u8; 6],
}

/// Value of `UNIX_CLIENTS`, keyed by `struct socket` address: a unix socket an agent connected
/// (or sent from) itself, after the server was judged. Sends on it need no second judgement:
/// until `expires_ns` (the grant's end, or never), and only by the same agent and for this very
/// socket (`ino`, the socket's inode number) and server (`server_dev`, `server_ino`: the
/// socket file's identity, or `protect::ABSTRACT_DEV` and the abstract name's hash).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnixClient {
    /// The grant the server was reached under, 0 for none.
    pub grant: u32,
    pub agent: u32,
    pub expires_ns: u64,
    pub ino: u64,
    pub server_ino: u64,
    pub server_dev: u32,
    pub padding: u32,
}

const _: () = assert!(core::mem::size_of::<Grant>() == 16);
const _: () = assert!(core::mem::size_of::<UnixClient>() == 40);
const _: () = assert!(core::mem::size_of::<GrantedFile>() == 32);
const _: () = assert!(core::mem::size_of::<GrantedSocket>() == 40);

#[cfg(feature = "user")]
mod user {
    // SAFETY: integers and byte arrays, explicit padding, sizes asserted above.
    unsafe impl aya::Pod for super::Grant {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::GrantedFile {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::GrantedSocket {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::UnixClient {}
}
