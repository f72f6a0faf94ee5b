//! Network egress: which peers agents may reach, and which local sockets they may not.
//!
//! - `rule`: the `network.allow` rules (`10.0.0.0/8:443`, `[fd00::/8]:*`, `db.internal:5432`).
//! - `canonical`: the single 128-bit form every address is compared in (IPv4 is IPv4-mapped).
//! - `resolv`: the host's DNS resolvers, reachable with `network.allow_dns`.
//! - `unix`: the built-in `AF_UNIX` sockets denied to every agent, and socket path checks.
//!
//! Everything here is pure but [`system_nameservers`].

pub mod canonical;
mod resolv;
mod rule;
pub mod table;
mod unix;

pub use self::{
    canonical::{canonical, canonical_cidr, display},
    resolv::{DNS_PORT, nameservers, system_nameservers},
    rule::{IpCidr, MAX_HOST_LEN, MAX_LABEL_LEN, NetworkRule, PortSpec, RuleProblem, Target},
    unix::{
        BUILTIN_SOCKETS, BuiltinSocket, SocketName, SocketPathProblem, builtin_denial,
        parse_socket_path,
    },
};
