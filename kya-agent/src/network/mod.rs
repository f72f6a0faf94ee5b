//! Network egress: which peers agents may reach, and which local sockets they may not. The
//! rules as written (`network.allow`, socket paths) are parsed in `config`; this module turns
//! them into what the kernel compares.
//!
//! - `canonical`: the single 128-bit form every address is compared in (IPv4 is IPv4-mapped).
//! - `table`: the allowlists compiled into the kernel's `NET_ALLOW` entries.
//! - `lookup`: host names to addresses, the one resolver kya uses.
//! - `metadata`: the cloud metadata endpoints, which no allowlist range opens.
//! - `resolv`: the host's DNS resolvers, reachable with `network.allow_dns`.
//! - `unix`: the built-in `AF_UNIX` sockets denied to every agent.
//!
//! Everything here is pure but [`system_nameservers`] and the [`resolve_host`] lookups.

pub mod canonical;
mod lookup;
pub mod metadata;
mod resolv;
pub mod table;
mod unix;

pub use self::{
    canonical::{canonical, canonical_cidr, cidr_contains, display},
    lookup::{resolve_host, resolve_host_async},
    resolv::{DNS_PORT, nameservers, system_nameservers},
    unix::{BUILTIN_SOCKETS, BuiltinSocket, SERVING_SOCKETS, SocketName, builtin_denial},
};
