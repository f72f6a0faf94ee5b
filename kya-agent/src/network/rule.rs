//! `network.allow` rules: which peers an agent may connect to, as written in the config
//! (`10.0.0.0/8:443`, `[fd00::/8]:*`, `db.internal:5432`), and why a string is not one.
//!
//! Parsing is strict and every rejection says exactly what is wrong, because a rule that
//! silently meant something else would open or close the wrong door. Addresses are kept as
//! written (IPv4 or IPv6); [`canonical`](super::canonical) gives the one form they are compared
//! in.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    ops::RangeInclusive,
    str::FromStr,
};

use super::canonical;

/// Longest host name, in characters (RFC 1035, without the trailing dot).
pub const MAX_HOST_LEN: usize = 253;

/// Longest label of a host name, in characters (RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;

/// One `network.allow` entry: connections to `target` on a port in `port` are allowed.
///
/// Parsed with [`NetworkRule::parse`] (or `str::parse`); its `Display` gives back the config
/// form, so `rule.to_string().parse()` returns the same rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NetworkRule {
    pub target: Target,
    pub port: PortSpec,
}

/// Which peers a [`NetworkRule`] names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// An address or network; a single address is a /32 or /128.
    Cidr(IpCidr),
    /// A host name, resolved by the daemon; valid by RFC 1123 and in lowercase.
    Host(String),
}

/// Which ports a [`NetworkRule`] allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortSpec {
    /// `*`: every port.
    Any,
    /// One port, never 0.
    One(u16),
    /// `LOW-HIGH`, both included; `0 < LOW <= HIGH`.
    Range(u16, u16),
}

/// An IPv4 or IPv6 network: an address and a prefix length no longer than the address, with
/// every bit past the prefix zero (`10.0.0.0/8`, never `10.0.0.1/8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpCidr {
    addr: IpAddr,
    prefix_len: u8,
}

impl NetworkRule {
    /// Parses the config form of a rule: `ADDRESS:PORT`, `ADDRESS/N:PORT`, `[IPV6]:PORT`,
    /// `[IPV6/N]:PORT` or `HOST:PORT`, where `PORT` is a number from 1 to 65535, a range
    /// `LOW-HIGH` or `*`.
    pub fn parse(text: &str) -> Result<Self, RuleProblem> {
        if text.is_empty() {
            return Err(RuleProblem::Empty);
        }
        if text.contains(char::is_whitespace) {
            return Err(RuleProblem::Whitespace {
                fixed: text.split_whitespace().collect(),
            });
        }
        let (target, port) = if let Some(rest) = text.strip_prefix('[') {
            let Some((inside, after)) = rest.split_once(']') else {
                return Err(RuleProblem::UnclosedBracket);
            };
            let port = match after.strip_prefix(':') {
                Some(port) => port,
                None if after.is_empty() => "",
                None => {
                    return Err(RuleProblem::TextAfterBracket {
                        text: after.to_owned(),
                    });
                }
            };
            (bracketed_target(inside, port)?, port)
        } else if text.matches(':').count() > 1 {
            return Err(bare_ipv6(text));
        } else {
            let (address, port) = text.split_once(':').unwrap_or((text, ""));
            (unbracketed_target(address, port)?, port)
        };
        if port.is_empty() {
            let address = text.strip_suffix(':').unwrap_or(text).to_owned();
            return Err(RuleProblem::MissingPort { address });
        }
        let port = PortSpec::parse(port)?;
        Ok(Self { target, port })
    }
}

impl fmt::Display for NetworkRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Cidr(cidr) if cidr.is_host() => match cidr.addr {
                IpAddr::V4(v4) => write!(f, "{v4}")?,
                IpAddr::V6(v6) => write!(f, "[{v6}]")?,
            },
            Target::Cidr(cidr) if cidr.addr.is_ipv6() => write!(f, "[{cidr}]")?,
            Target::Cidr(cidr) => write!(f, "{cidr}")?,
            Target::Host(host) => f.write_str(host)?,
        }
        write!(f, ":{}", self.port)
    }
}

impl FromStr for NetworkRule {
    type Err = RuleProblem;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl PortSpec {
    /// Parses `*`, a port `1..=65535` or a range `LOW-HIGH` of them.
    pub fn parse(text: &str) -> Result<Self, RuleProblem> {
        if text == "*" {
            return Ok(Self::Any);
        }
        match text.split_once('-') {
            Some((low, high)) => {
                let (low, high) = (port_number(low, text)?, port_number(high, text)?);
                if low > high {
                    return Err(RuleProblem::InvertedPortRange {
                        first: low,
                        last: high,
                    });
                }
                Ok(Self::Range(low, high))
            }
            None => port_number(text, text).map(Self::One),
        }
    }

    /// Whether a connection to `port` is allowed.
    #[must_use]
    pub fn contains(self, port: u16) -> bool {
        self.range().contains(&port)
    }

    /// The ports allowed, both ends included; `Any` is `0..=65535`.
    #[must_use]
    pub fn range(self) -> RangeInclusive<u16> {
        match self {
            Self::Any => 0..=u16::MAX,
            Self::One(port) => port..=port,
            Self::Range(low, high) => low..=high,
        }
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::One(port) => write!(f, "{port}"),
            Self::Range(low, high) => write!(f, "{low}-{high}"),
        }
    }
}

impl FromStr for PortSpec {
    type Err = RuleProblem;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
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

    /// Whether `ip` is in the network, comparing canonical forms: `0.0.0.0/0` holds
    /// `::ffff:1.2.3.4` but not `::1`, and `::/0` holds every address.
    #[must_use]
    pub fn contains(self, ip: IpAddr) -> bool {
        let (network, prefix_len) = canonical::canonical_cidr(self);
        canonical::contains(network, prefix_len, canonical::canonical(ip))
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
fn bracketed_target(inside: &str, port: &str) -> Result<Target, RuleProblem> {
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
fn unbracketed_target(address: &str, port: &str) -> Result<Target, RuleProblem> {
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
fn split_prefix(text: &str) -> (&str, Option<&str>) {
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

/// The problem with `text`, which has several `:` and no brackets: an IPv6 address without
/// brackets, or not an address at all.
fn bare_ipv6(text: &str) -> RuleProblem {
    let mut suggestions = Vec::new();
    if let Some((address, port)) = text.rsplit_once(':')
        && is_ipv6_cidr(address)
        && PortSpec::parse(port).is_ok()
    {
        suggestions.push(format!("[{address}]:{port}"));
    }
    if is_ipv6_cidr(text) {
        suggestions.push(format!("[{text}]:443"));
    }
    if suggestions.is_empty() {
        RuleProblem::Malformed
    } else {
        RuleProblem::BareIpv6 { suggestions }
    }
}

/// Whether `text` is written like an IPv6 address or network (the prefix length's value
/// unchecked).
fn is_ipv6_cidr(text: &str) -> bool {
    let (addr, prefix) = split_prefix(text);
    addr.parse::<Ipv6Addr>().is_ok()
        && prefix
            .is_none_or(|prefix| !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit()))
}

/// A port `1..=65535` written in decimal; `spec` is the whole port field, for the message.
fn port_number(text: &str, spec: &str) -> Result<u16, RuleProblem> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RuleProblem::InvalidPort {
            text: spec.to_owned(),
        });
    }
    match text.parse::<u16>() {
        Ok(0) => Err(RuleProblem::PortZero),
        Ok(port) => Ok(port),
        Err(_) => Err(RuleProblem::PortOutOfRange {
            port: text.to_owned(),
        }),
    }
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

/// Why a string is not a [`NetworkRule`] (or an [`IpCidr`], or a [`PortSpec`]). The `Display`
/// text is what is wrong; [`fix`](Self::fix) says what to write instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleProblem {
    /// `""`.
    Empty,
    /// Spaces or other whitespace anywhere; `fixed` is the text without it.
    Whitespace { fixed: String },
    /// Several `:` and no brackets, and no IPv6 address in it either.
    Malformed,
    /// An IPv6 address without brackets; `suggestions` are the bracketed forms it may mean.
    BareIpv6 { suggestions: Vec<String> },
    /// `[` without `]`.
    UnclosedBracket,
    /// Something other than `:PORT` after `]`.
    TextAfterBracket { text: String },
    /// An IPv4 address or a host name in brackets; `fixed` is the rule without them.
    BracketedNotIpv6 { text: String, fixed: String },
    /// No address before the `:`.
    MissingAddress,
    /// `*` as the address.
    WildcardAddress { port: String },
    /// No `:PORT`, or nothing after the `:`; `address` is the rule as written, without `:`.
    MissingPort { address: String },
    /// Something that is meant as an IPv4 address but is not one.
    InvalidIpv4 { text: String },
    /// Something in brackets that is not an IPv6 address.
    InvalidIpv6 { text: String },
    /// The part after `/` is not a number from 0 to `max`.
    InvalidPrefixLength { text: String, max: u8 },
    /// `10.0.0.1/8`: bits set past the prefix; `fixed` is the rule with the network address.
    HostBitsSet {
        cidr: String,
        network: String,
        fixed: String,
    },
    /// A host name with a character other than a letter, a digit, `-` or `.`.
    HostInvalidChar { bad: char },
    /// A host name longer than [`MAX_HOST_LEN`].
    HostTooLong { len: usize },
    /// A host name with `..`, or a leading or trailing `.`.
    HostEmptyLabel,
    /// A host name label longer than [`MAX_LABEL_LEN`].
    HostLabelTooLong { label: String },
    /// A host name label that starts or ends with `-`.
    HostLabelHyphen { label: String },
    /// A port that is not a number, a range or `*`; `text` is the whole port as written.
    InvalidPort { text: String },
    /// Port 0.
    PortZero,
    /// A port above 65535.
    PortOutOfRange { port: String },
    /// `HIGH-LOW`: the first port is larger than the last.
    InvertedPortRange { first: u16, last: u16 },
}

impl RuleProblem {
    /// What the user should write instead.
    #[must_use]
    pub fn fix(&self) -> String {
        const FORMS: &str = "write ADDRESS:PORT, ADDRESS/N:PORT, [IPV6]:PORT, [IPV6/N]:PORT or \
                             HOST:PORT, e.g. \"10.0.0.0/8:443\", \"[fd00::1]:9000\" or \
                             \"db.internal:5432\"";
        const PORTS: &str = "a port from 1 to 65535, a range such as 8000-8099, or * for any \
                             port";
        match self {
            Self::Empty => format!("{FORMS}, or remove the empty string"),
            Self::Whitespace { fixed } => format!("remove the whitespace: \"{fixed}\""),
            Self::Malformed => FORMS.to_owned(),
            Self::BareIpv6 { suggestions } => {
                let mut fix =
                    "write an IPv6 address in [brackets] before ':' and the port".to_owned();
                for (index, suggestion) in suggestions.iter().enumerate() {
                    fix.push_str(if index == 0 { ": \"" } else { ", or \"" });
                    fix.push_str(suggestion);
                    fix.push('"');
                    if index > 0 {
                        fix.push_str(" if all of it is the address");
                    }
                }
                fix
            }
            Self::UnclosedBracket => {
                "close the bracket after the IPv6 address, e.g. \"[fd00::1]:443\"".to_owned()
            }
            Self::TextAfterBracket { .. } => {
                "write ':' and the port right after ']', e.g. \"[fd00::1]:443\"".to_owned()
            }
            Self::BracketedNotIpv6 { fixed, .. } => {
                format!("write IPv4 addresses and host names without brackets: \"{fixed}\"")
            }
            Self::MissingAddress => {
                format!("write the address, network or host name before the ':'; {FORMS}")
            }
            Self::WildcardAddress { port } => {
                let port = if port.is_empty() { "PORT" } else { port };
                format!(
                    "to allow port {port} on every address write both \"0.0.0.0/0:{port}\" and \
                     \"[::/0]:{port}\""
                )
            }
            Self::MissingPort { address } => format!(
                "add ':' and the port, e.g. \"{address}:443\", or \"{address}:*\" for any port"
            ),
            Self::InvalidIpv4 { .. } => "write an IPv4 address as four numbers from 0 to 255 \
                                         without leading zeros, e.g. \"10.0.0.1\"; only \
                                         addresses take a /prefix, host names do not"
                .to_owned(),
            Self::InvalidIpv6 { text } if text.contains('%') => {
                "remove the zone index ('%' and what follows): rules name addresses, not \
                 interfaces"
                    .to_owned()
            }
            Self::InvalidIpv6 { .. } => "write a valid IPv6 address or network in the \
                                         brackets, e.g. \"[fd00::1]:443\" or \"[fd00::/8]:*\""
                .to_owned(),
            Self::InvalidPrefixLength { max, .. } => {
                format!("write the prefix length as a number from 0 to {max}")
            }
            Self::HostBitsSet { fixed, .. } => {
                format!("write the network address: \"{fixed}\"")
            }
            Self::HostInvalidChar { bad } if !bad.is_ascii() => {
                "write an internationalised name in its ASCII (punycode, 'xn--') form".to_owned()
            }
            Self::HostInvalidChar { .. } => "use only letters, digits, '-' and '.' in a host \
                                             name, or write an address"
                .to_owned(),
            Self::HostTooLong { .. } => {
                format!("a host name has at most {MAX_HOST_LEN} characters; check the name")
            }
            Self::HostEmptyLabel => {
                "remove the extra '.': write the name without '..' and without a leading or \
                 trailing '.'"
                    .to_owned()
            }
            Self::HostLabelTooLong { .. } => format!(
                "each part of a host name between dots has at most {MAX_LABEL_LEN} characters; \
                 check the name"
            ),
            Self::HostLabelHyphen { .. } => {
                "a part of a host name between dots cannot start or end with '-'; check the name"
                    .to_owned()
            }
            Self::InvalidPort { .. } | Self::PortOutOfRange { .. } => format!("write {PORTS}"),
            Self::PortZero => {
                format!("port 0 is not a port a connection can reach; write {PORTS}")
            }
            Self::InvertedPortRange { first, last } => {
                format!("write the lower port first: {last}-{first}")
            }
        }
    }
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty rule"),
            Self::Whitespace { .. } => f.write_str("whitespace in the rule"),
            Self::Malformed => {
                f.write_str("not an address, network or host name followed by ':' and a port")
            }
            Self::BareIpv6 { .. } => f.write_str("IPv6 address without brackets"),
            Self::UnclosedBracket => f.write_str("'[' without a closing ']'"),
            Self::TextAfterBracket { text } => {
                write!(
                    f,
                    "unexpected {text:?} after ']' where ':' and the port belong"
                )
            }
            Self::BracketedNotIpv6 { text, .. } => write!(
                f,
                "{text:?} is in brackets, which are only for IPv6 addresses"
            ),
            Self::MissingAddress => f.write_str("missing address before the port"),
            Self::WildcardAddress { .. } => f.write_str("'*' is not an address"),
            Self::MissingPort { .. } => f.write_str("missing port"),
            Self::InvalidIpv4 { text } => write!(f, "{text:?} is not a valid IPv4 address"),
            Self::InvalidIpv6 { text } => write!(f, "{text:?} is not a valid IPv6 address"),
            Self::InvalidPrefixLength { text, max } => {
                write!(f, "prefix length {text:?} is not a number from 0 to {max}")
            }
            Self::HostBitsSet { cidr, network, .. } => write!(
                f,
                "{cidr} has bits set past the prefix; the network is {network}"
            ),
            Self::HostInvalidChar { bad } => write!(f, "host name contains {bad:?}"),
            Self::HostTooLong { len } => write!(
                f,
                "host name is {len} characters long, more than {MAX_HOST_LEN}"
            ),
            Self::HostEmptyLabel => {
                f.write_str("host name has an empty part ('..', or a leading or trailing '.')")
            }
            Self::HostLabelTooLong { label } => write!(
                f,
                "host name part {label:?} is longer than {MAX_LABEL_LEN} characters"
            ),
            Self::HostLabelHyphen { label } => {
                write!(f, "host name part {label:?} starts or ends with '-'")
            }
            Self::InvalidPort { text } => {
                write!(f, "port {text:?} is not a number, a range or '*'")
            }
            Self::PortZero => f.write_str("port 0 is not a valid port"),
            Self::PortOutOfRange { port } => {
                write!(f, "port {port} is out of range (1 to 65535)")
            }
            Self::InvertedPortRange { first, last } => write!(
                f,
                "port range {first}-{last} is inverted: {first} is larger than {last}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn rule(text: &str) -> NetworkRule {
        NetworkRule::parse(text)
            .unwrap_or_else(|problem| panic!("expected {text:?} to be a valid rule: {problem}"))
    }

    #[track_caller]
    fn problem(text: &str) -> RuleProblem {
        match NetworkRule::parse(text) {
            Ok(rule) => panic!("expected {text:?} to be rejected, got {rule:?}"),
            Err(problem) => problem,
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse()
            .unwrap_or_else(|error| panic!("{text:?} is an IP address: {error}"))
    }

    fn net(addr: &str, prefix_len: u8) -> Target {
        Target::Cidr(
            IpCidr::new(ip(addr), prefix_len)
                .unwrap_or_else(|| panic!("{addr}/{prefix_len} is a network")),
        )
    }

    #[test]
    fn every_form_parses() {
        for (text, target, port) in [
            ("127.0.0.2:8080", net("127.0.0.2", 32), PortSpec::One(8080)),
            ("10.0.0.0/8:443", net("10.0.0.0", 8), PortSpec::One(443)),
            ("0.0.0.0/0:53", net("0.0.0.0", 0), PortSpec::One(53)),
            ("10.1.2.3/32:1", net("10.1.2.3", 32), PortSpec::One(1)),
            ("[fd00::/8]:*", net("fd00::", 8), PortSpec::Any),
            ("[::/0]:65535", net("::", 0), PortSpec::One(65535)),
            ("[::1]:9000", net("::1", 128), PortSpec::One(9000)),
            (
                "[::ffff:127.0.0.2]:80",
                net("::ffff:127.0.0.2", 128),
                PortSpec::One(80),
            ),
            (
                "db.internal:5432",
                Target::Host("db.internal".into()),
                PortSpec::One(5432),
            ),
            (
                "localhost:*",
                Target::Host("localhost".into()),
                PortSpec::Any,
            ),
            (
                "Db-1.Example.COM:8000-8099",
                Target::Host("db-1.example.com".into()),
                PortSpec::Range(8000, 8099),
            ),
            ("x:80-80", Target::Host("x".into()), PortSpec::Range(80, 80)),
            (
                "1e100.net:443",
                Target::Host("1e100.net".into()),
                PortSpec::One(443),
            ),
            ("10.0.0.1:0080", net("10.0.0.1", 32), PortSpec::One(80)),
        ] {
            assert_eq!(rule(text), NetworkRule { target, port }, "for {text:?}");
        }
    }

    #[test]
    fn display_gives_back_the_config_form() {
        for text in [
            "127.0.0.2:8080",
            "10.0.0.0/8:443",
            "0.0.0.0/0:*",
            "[fd00::/8]:*",
            "[::1]:9000",
            "[::/0]:1-1024",
            "[::ffff:127.0.0.2]:80",
            "db.internal:5432",
            "localhost:*",
        ] {
            let parsed = rule(text);
            assert_eq!(parsed.to_string(), text, "Display must round-trip");
            assert_eq!(text.parse::<NetworkRule>(), Ok(parsed));
        }
        assert_eq!(rule("10.0.0.1/32:80").to_string(), "10.0.0.1:80");
        assert_eq!(rule("[FD00::0001/128]:80").to_string(), "[fd00::1]:80");
        assert_eq!(rule("DB.internal:80").to_string(), "db.internal:80");
    }

    #[test]
    fn ports_cover_what_they_say() {
        assert!(PortSpec::Any.contains(0) && PortSpec::Any.contains(65535));
        assert!(PortSpec::One(443).contains(443));
        assert!(!PortSpec::One(443).contains(444));
        let range = PortSpec::Range(8000, 8099);
        assert!(range.contains(8000) && range.contains(8099));
        assert!(!range.contains(7999) && !range.contains(8100));
        assert_eq!(range.range(), 8000..=8099);
        for (text, port) in [
            ("*", PortSpec::Any),
            ("1", PortSpec::One(1)),
            ("65535", PortSpec::One(65535)),
            ("1-65535", PortSpec::Range(1, 65535)),
        ] {
            assert_eq!(text.parse::<PortSpec>(), Ok(port));
            assert_eq!(port.to_string(), text);
        }
    }

    #[test]
    fn port_mistakes_are_named() {
        assert_eq!(problem("x:0"), RuleProblem::PortZero);
        assert_eq!(problem("x:0-80"), RuleProblem::PortZero);
        assert_eq!(problem("x:00000"), RuleProblem::PortZero);
        for (text, port) in [
            ("x:65536", "65536"),
            ("x:70000", "70000"),
            ("x:8000-70000", "70000"),
            (
                "x:123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
        ] {
            assert_eq!(
                problem(text),
                RuleProblem::PortOutOfRange { port: port.into() },
                "for {text:?}"
            );
        }
        assert_eq!(
            problem("x:70000").to_string(),
            "port 70000 is out of range (1 to 65535)"
        );
        for port in [
            "http",
            "-80",
            "80-",
            "+80",
            "8000-8099-9000",
            "**",
            "8o",
            "1.5",
        ] {
            assert_eq!(
                problem(&format!("x:{port}")),
                RuleProblem::InvalidPort { text: port.into() },
                "for {port:?}"
            );
        }
        assert_eq!(
            problem("x:8099-8000"),
            RuleProblem::InvertedPortRange {
                first: 8099,
                last: 8000
            }
        );
        assert!(problem("x:8099-8000").fix().contains("8000-8099"));
    }

    #[test]
    fn networks_must_be_written_with_their_network_address() {
        assert_eq!(
            problem("10.0.0.1/8:443"),
            RuleProblem::HostBitsSet {
                cidr: "10.0.0.1/8".into(),
                network: "10.0.0.0/8".into(),
                fixed: "10.0.0.0/8:443".into(),
            }
        );
        assert_eq!(
            problem("[fd00::1/8]:*"),
            RuleProblem::HostBitsSet {
                cidr: "fd00::1/8".into(),
                network: "fd00::/8".into(),
                fixed: "[fd00::/8]:*".into(),
            }
        );
        assert_eq!(
            problem("192.168.1.1/0"),
            RuleProblem::HostBitsSet {
                cidr: "192.168.1.1/0".into(),
                network: "0.0.0.0/0".into(),
                fixed: "0.0.0.0/0".into(),
            },
            "the address comes before the missing port"
        );
        assert_eq!(IpCidr::new(ip("10.0.0.1"), 8), None);
        assert_eq!(IpCidr::new(ip("10.0.0.0"), 33), None);
        assert_eq!(IpCidr::new(ip("::"), 129), None);
        assert!(IpCidr::new(ip("10.0.0.0"), 8).is_some());
    }

    #[test]
    fn cidrs_parse_on_their_own() {
        let cidr: IpCidr = "10.0.0.0/8".parse().expect("a valid CIDR");
        assert_eq!((cidr.addr(), cidr.prefix_len()), (ip("10.0.0.0"), 8));
        assert!(!cidr.is_host());
        assert_eq!(cidr.to_string(), "10.0.0.0/8");
        let host: IpCidr = "::1".parse().expect("a valid address");
        assert_eq!((host.addr(), host.prefix_len()), (ip("::1"), 128));
        assert!(host.is_host());
        assert_eq!(
            "10.0.0.1/8".parse::<IpCidr>(),
            Err(RuleProblem::HostBitsSet {
                cidr: "10.0.0.1/8".into(),
                network: "10.0.0.0/8".into(),
                fixed: "10.0.0.0/8".into(),
            })
        );
        assert_eq!(
            "fd00::/200".parse::<IpCidr>(),
            Err(RuleProblem::InvalidPrefixLength {
                text: "200".into(),
                max: 128
            })
        );
        assert!(matches!(
            "fd00::g".parse::<IpCidr>(),
            Err(RuleProblem::InvalidIpv6 { .. })
        ));
        assert!(matches!(
            "10.0.0".parse::<IpCidr>(),
            Err(RuleProblem::InvalidIpv4 { .. })
        ));
    }

    #[test]
    fn cidr_containment_uses_the_canonical_form() {
        let all_v4: IpCidr = "0.0.0.0/0".parse().expect("valid");
        assert!(all_v4.contains(ip("203.0.113.9")));
        assert!(all_v4.contains(ip("::ffff:203.0.113.9")));
        assert!(!all_v4.contains(ip("::1")));
        let all: IpCidr = "::/0".parse().expect("valid");
        assert!(all.contains(ip("203.0.113.9")) && all.contains(ip("fd00::1")));
        let mapped: IpCidr = "::ffff:10.0.0.0/104".parse().expect("valid");
        assert!(mapped.contains(ip("10.9.8.7")));
        assert!(!mapped.contains(ip("11.0.0.1")));
    }

    #[test]
    fn bare_ipv6_suggests_the_bracketed_forms() {
        for (text, suggestions) in [
            ("::1:9000", &["[::1]:9000", "[::1:9000]:443"][..]),
            (
                "2001:db8::1:443",
                &["[2001:db8::1]:443", "[2001:db8::1:443]:443"],
            ),
            ("fd00::/8:443", &["[fd00::/8]:443"]),
            ("fd00::/8:*", &["[fd00::/8]:*"]),
            ("::1", &["[::1]:443"]),
            ("2001:db8::1", &["[2001:db8::1]:443"]),
            ("fd00::/8", &["[fd00::/8]:443"]),
        ] {
            let suggestions: Vec<String> = suggestions.iter().map(ToString::to_string).collect();
            assert_eq!(
                problem(text),
                RuleProblem::BareIpv6 { suggestions },
                "for {text:?}"
            );
        }
        let fix = problem("::1:9000").fix();
        assert!(
            fix.contains("\"[::1]:9000\", or \"[::1:9000]:443\" if all of it is the address"),
            "{fix}"
        );
        assert_eq!(problem("a:b:c"), RuleProblem::Malformed);
        assert_eq!(problem("fe80::1%eth0:80"), RuleProblem::Malformed);
    }

    #[test]
    fn address_mistakes_are_named() {
        assert_eq!(problem(""), RuleProblem::Empty);
        assert_eq!(
            problem(" 10.0.0.1 : 80"),
            RuleProblem::Whitespace {
                fixed: "10.0.0.1:80".into()
            }
        );
        assert_eq!(problem("[::1"), RuleProblem::UnclosedBracket);
        assert_eq!(
            problem("[::1]9000"),
            RuleProblem::TextAfterBracket {
                text: "9000".into()
            }
        );
        assert_eq!(
            problem("[10.0.0.1]:80"),
            RuleProblem::BracketedNotIpv6 {
                text: "10.0.0.1".into(),
                fixed: "10.0.0.1:80".into()
            }
        );
        assert_eq!(
            problem("[db.internal]"),
            RuleProblem::BracketedNotIpv6 {
                text: "db.internal".into(),
                fixed: "db.internal".into()
            }
        );
        assert_eq!(
            problem("[]:80"),
            RuleProblem::InvalidIpv6 {
                text: String::new()
            }
        );
        assert!(problem("[fe80::1%eth0]:80").fix().contains("zone index"));
        assert_eq!(problem(":443"), RuleProblem::MissingAddress);
        assert_eq!(
            problem("*:443"),
            RuleProblem::WildcardAddress { port: "443".into() }
        );
        for (text, address) in [
            ("10.0.0.1", "10.0.0.1"),
            ("10.0.0.1:", "10.0.0.1"),
            ("[::1]", "[::1]"),
            ("[::1]:", "[::1]"),
            ("db.internal", "db.internal"),
        ] {
            assert_eq!(
                problem(text),
                RuleProblem::MissingPort {
                    address: address.into()
                },
                "for {text:?}"
            );
        }
        for (text, bad) in [
            ("10.0.0.256:80", "10.0.0.256"),
            ("010.0.0.1:80", "010.0.0.1"),
            ("10.0.0:80", "10.0.0"),
            ("1.2.3.4.5:80", "1.2.3.4.5"),
            ("db/8:80", "db"),
        ] {
            assert_eq!(
                problem(text),
                RuleProblem::InvalidIpv4 { text: bad.into() },
                "for {text:?}"
            );
        }
        for (text, prefix, max) in [
            ("10.0.0.0/33:80", "33", 32),
            ("10.0.0.0/:80", "", 32),
            ("10.0.0.0/+8:80", "+8", 32),
            ("10.0.0.0/8/8:80", "8/8", 32),
            ("[fd00::/129]:80", "129", 128),
            ("[fd00::/999]:80", "999", 128),
        ] {
            assert_eq!(
                problem(text),
                RuleProblem::InvalidPrefixLength {
                    text: prefix.into(),
                    max
                },
                "for {text:?}"
            );
        }
    }

    #[test]
    fn host_names_follow_rfc_1123() {
        let longest_label = "a".repeat(MAX_LABEL_LEN);
        let longest = [longest_label.as_str(); 4].join(".")[..MAX_HOST_LEN].to_owned();
        assert_eq!(
            rule(&format!("{longest}:1")).target,
            Target::Host(longest.clone())
        );
        let too_long = format!("{longest}a");
        assert_eq!(
            problem(&format!("{too_long}:1")),
            RuleProblem::HostTooLong { len: 254 }
        );
        assert_eq!(
            problem(&format!("{longest_label}a.com:1")),
            RuleProblem::HostLabelTooLong {
                label: format!("{longest_label}a")
            }
        );
        for text in ["db..internal:1", "db.internal.:1", ".db:1"] {
            assert_eq!(problem(text), RuleProblem::HostEmptyLabel, "for {text:?}");
        }
        for (text, label) in [("-db.internal:1", "-db"), ("db.x-:1", "x-")] {
            assert_eq!(
                problem(text),
                RuleProblem::HostLabelHyphen {
                    label: label.into()
                },
                "for {text:?}"
            );
        }
        for (text, bad) in [
            ("db_1.internal:1", '_'),
            ("bücher.de:1", 'ü'),
            ("a!b:1", '!'),
        ] {
            assert_eq!(
                problem(text),
                RuleProblem::HostInvalidChar { bad },
                "for {text:?}"
            );
        }
        assert!(problem("bücher.de:1").fix().contains("punycode"));
    }

    #[test]
    fn every_problem_has_a_message_and_a_fix() {
        for text in [
            "",
            " x:1",
            "a:b:c",
            "::1",
            "[::1",
            "[::1]x",
            "[1.2.3.4]:1",
            ":1",
            "*:1",
            "x",
            "1.2.3.999:1",
            "[::g]:1",
            "1.0.0.0/40:1",
            "1.0.0.1/8:1",
            "a_b:1",
            "a..b:1",
            "-a:1",
            "x:y",
            "x:0",
            "x:70000",
            "x:9-1",
        ] {
            let problem = problem(text);
            assert!(!problem.to_string().is_empty(), "{text:?}: empty message");
            assert!(!problem.fix().is_empty(), "{text:?}: empty fix");
            assert!(!problem.to_string().contains('\n') && !problem.fix().contains('\n'));
        }
    }
}
