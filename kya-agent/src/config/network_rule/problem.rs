//! Why a string is not a `network.allow` rule, and what to write instead: each problem names
//! the value at fault and a fix the config error shows under it.

use std::fmt;

/// Longest host name, in characters (RFC 1035, without the trailing dot): what `address`
/// enforces and the messages below state.
pub const MAX_HOST_LEN: usize = 253;

/// Longest label of a host name, in characters (RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;

/// Why a string is not a [`NetworkRule`](super::NetworkRule) (or an [`IpCidr`](super::IpCidr),
/// or a [`PortSpec`](super::PortSpec)). The `Display` text is what is wrong;
/// [`fix`](Self::fix) says what to write instead.
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
