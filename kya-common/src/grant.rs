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

const _: () = assert!(core::mem::size_of::<Grant>() == 16);
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
}
