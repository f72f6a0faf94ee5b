//! `network.allow` rules: which peers an agent may connect to, as written in the config
//! (`10.0.0.0/8:443`, `[fd00::/8]:*`, `db.internal:5432`), and why a string is not one.
//!
//! Parsing is strict and every rejection says exactly what is wrong, because a rule that
//! silently meant something else would open or close the wrong door. Addresses are kept as
//! written (IPv4 or IPv6); the network module gives the one form they are compared in.
//!
//! - this file: the rule as a whole and its ports.
//! - `address`: the [`Target`] of a rule (an address, a network or a host name), the one parser
//!   of the address a peer is written with (rules here, grants for `kya grant --connect`).
//! - `problem`: why a string is not a rule, and what to write instead.

mod address;
mod problem;

#[cfg(test)]
mod tests;

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr},
    ops::RangeInclusive,
    str::FromStr,
};

use self::address::{bracketed_target, split_prefix, unbracketed_target};
pub use self::{
    address::{IpCidr, Target},
    problem::{MAX_HOST_LEN, MAX_LABEL_LEN, RuleProblem},
};

/// One `network.allow` entry: connections to `target` on a port in `port` are allowed.
///
/// Parsed with [`NetworkRule::parse`] (or `str::parse`); its `Display` gives back the config
/// form, so `rule.to_string().parse()` returns the same rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NetworkRule {
    pub target: Target,
    pub port: PortSpec,
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
            Target::Cidr(cidr) if cidr.is_host() => match cidr.addr() {
                IpAddr::V4(v4) => write!(f, "{v4}")?,
                IpAddr::V6(v6) => write!(f, "[{v6}]")?,
            },
            Target::Cidr(cidr) if cidr.addr().is_ipv6() => write!(f, "[{cidr}]")?,
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
