//! The address part of a peer as people write it: an IPv4 or IPv6 address or network
//! ([`IpCidr`]), or a host name. Every peer address kya reads from a person, in a rule or in a
//! grant, is parsed here.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use super::problem::{MAX_HOST_LEN, MAX_LABEL_LEN, RuleProblem};

/// Which peers a [`NetworkRule`](super::NetworkRule) names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// An address or network; a single address is a /32 or /128.
    Cidr(IpCidr),
    /// A host name, resolved by the daemon; valid by RFC 1123 and in lowercase.
    Host(String),
}

/// An IPv4 or IPv6 network: an address and a prefix length no longer than the address, with
/// every bit past the prefix zero (`10.0.0.0/8`, never `10.0.0.1/8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpCidr {
    addr: IpAddr,
    prefix_len: u8,
}

impl IpCidr {
    /// The network `addr/prefix_len`, or `None` if the prefix is longer than the address or
    /// `addr` has bits set past it.
    #[must_use]
    pub fn new(addr: IpAddr, prefix_len: u8) -> Option<Self> {
        (prefix_len <= max_prefix_len(addr) && network_address(addr, prefix_len) == addr)
            .then_some(Self { addr, prefix_len })
    }

    /// The network holding `addr` alone: `addr/32` or `addr/128`.
    #[must_use]
    pub fn host(addr: IpAddr) -> Self {
        Self {
            addr,
            prefix_len: max_prefix_len(addr),
        }
    }

    /// The network address, as written (IPv4 or IPv6).
    #[must_use]
    pub fn addr(self) -> IpAddr {
        self.addr
    }

    /// The prefix length, in bits of [`addr`](Self::addr): at most 32 for IPv4, 128 for IPv6.
    #[must_use]
    pub fn prefix_len(self) -> u8 {
        self.prefix_len
    }

    /// Whether the network is a single address.
    #[must_use]
    pub fn is_host(self) -> bool {
        self.prefix_len == max_prefix_len(self.addr)
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for IpCidr {
    type Err = RuleProblem;

    /// Parses `ADDRESS` or `ADDRESS/N`, IPv4 or IPv6, without brackets or port.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr_text, prefix) = split_prefix(text);
        let addr = match addr_text.parse::<IpAddr>() {
            Ok(addr) => addr,
            Err(_) if addr_text.contains(':') => {
                return Err(RuleProblem::InvalidIpv6 {
                    text: addr_text.to_owned(),
                });
            }
            Err(_) => {
                return Err(RuleProblem::InvalidIpv4 {
                    text: addr_text.to_owned(),
                });
            }
        };
        cidr(addr, prefix, |network| network.to_string())
    }
}

/// The target inside `[…]`: an IPv6 address or network. `port` is the port as written, for the
/// fix of a mistake in the address.
pub(super) fn bracketed_target(inside: &str, port: &str) -> Result<Target, RuleProblem> {
    let (addr_text, prefix) = split_prefix(inside);
    let Ok(addr) = addr_text.parse::<Ipv6Addr>() else {
        // An IPv4 address or a host name in brackets: the brackets are the only mistake.
        if unbracketed_target(inside, port).is_ok() {
            return Err(RuleProblem::BracketedNotIpv6 {
                text: inside.to_owned(),
                fixed: with_port(inside, port),
            });
        }
        return Err(RuleProblem::InvalidIpv6 {
            text: addr_text.to_owned(),
        });
    };
    cidr(IpAddr::V6(addr), prefix, |network| {
        with_port(&format!("[{network}]"), port)
    })
    .map(Target::Cidr)
}

/// The target of a rule without brackets: an IPv4 address or network, or a host name.
pub(super) fn unbracketed_target(address: &str, port: &str) -> Result<Target, RuleProblem> {
    if address.is_empty() {
        return Err(RuleProblem::MissingAddress);
    }
    if address == "*" {
        return Err(RuleProblem::WildcardAddress {
            port: port.to_owned(),
        });
    }
    let (addr_text, prefix) = split_prefix(address);
    if let Ok(addr) = addr_text.parse::<Ipv4Addr>() {
        return cidr(IpAddr::V4(addr), prefix, |network| {
            with_port(&network.to_string(), port)
        })
        .map(Target::Cidr);
    }
    // A prefix needs an address; all digits and dots is an address gone wrong, not a name.
    if prefix.is_some() || addr_text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(RuleProblem::InvalidIpv4 {
            text: addr_text.to_owned(),
        });
    }
    host_name(address).map(Target::Host)
}

/// `text` split at its first `/`: the address and the prefix length, if any.
pub(super) fn split_prefix(text: &str) -> (&str, Option<&str>) {
    match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (text, None),
    }
}

/// The network `addr/prefix` (`addr` alone without a prefix). `fixed` writes the rule as it
/// should have been, given the network address, when `addr` has host bits set.
fn cidr(
    addr: IpAddr,
    prefix: Option<&str>,
    fixed: impl FnOnce(IpCidr) -> String,
) -> Result<IpCidr, RuleProblem> {
    let Some(prefix) = prefix else {
        return Ok(IpCidr::host(addr));
    };
    let max = max_prefix_len(addr);
    let prefix_len = prefix
        .parse::<u8>()
        .ok()
        .filter(|len| prefix.bytes().all(|b| b.is_ascii_digit()) && *len <= max)
        .ok_or_else(|| RuleProblem::InvalidPrefixLength {
            text: prefix.to_owned(),
            max,
        })?;
    IpCidr::new(addr, prefix_len).ok_or_else(|| {
        let network = IpCidr {
            addr: network_address(addr, prefix_len),
            prefix_len,
        };
        RuleProblem::HostBitsSet {
            cidr: format!("{addr}/{prefix_len}"),
            network: network.to_string(),
            fixed: fixed(network),
        }
    })
}

/// `host` lowercased, if it is a valid RFC 1123 host name.
fn host_name(host: &str) -> Result<String, RuleProblem> {
    if let Some(bad) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.')))
    {
        return Err(RuleProblem::HostInvalidChar { bad });
    }
    let len = host.len();
    if len > MAX_HOST_LEN {
        return Err(RuleProblem::HostTooLong { len });
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err(RuleProblem::HostEmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(RuleProblem::HostLabelTooLong {
                label: label.to_owned(),
            });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(RuleProblem::HostLabelHyphen {
                label: label.to_owned(),
            });
        }
    }
    Ok(host.to_ascii_lowercase())
}

/// `address:port`, or `address` alone if no port was written.
fn with_port(address: &str, port: &str) -> String {
    if port.is_empty() {
        address.to_owned()
    } else {
        format!("{address}:{port}")
    }
}

fn max_prefix_len(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `addr` with every bit past the first `prefix_len` cleared.
fn network_address(addr: IpAddr, prefix_len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix_len.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix_len.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}
