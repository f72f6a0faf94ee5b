//! The one form every address takes before it is compared or handed to the kernel: a 128-bit
//! IPv6 value, where IPv4 `a.b.c.d` is the IPv4-mapped `::ffff:a.b.c.d` and an IPv4 CIDR `/N`
//! is the mapped `/(96 + N)`.
//!
//! An agent can reach an IPv4 peer through an `AF_INET` socket or through an `AF_INET6` socket
//! and a mapped address; with a single form, one rule covers both and no spelling slips past.
//! IPv4-compatible addresses (`::a.b.c.d`, deprecated by RFC 4291) are not IPv4 and stay as
//! they are.

use std::net::{IpAddr, Ipv6Addr};

use crate::config::IpCidr;

/// Bits of the canonical form before an IPv4 address: the `::ffff:0:0/96` prefix.
pub const IPV4_MAPPED_PREFIX_LEN: u8 = 96;

/// The canonical form of `ip`.
#[must_use]
pub fn canonical(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The canonical form of `cidr`: its network address and prefix length, in 0..=128. Bits past
/// the prefix are zero.
#[must_use]
pub fn canonical_cidr(cidr: IpCidr) -> ([u8; 16], u8) {
    let prefix_len = match cidr.addr() {
        IpAddr::V4(_) => IPV4_MAPPED_PREFIX_LEN + cidr.prefix_len(),
        IpAddr::V6(_) => cidr.prefix_len(),
    };
    let network = u128::from_be_bytes(canonical(cidr.addr())) & mask(prefix_len);
    (network.to_be_bytes(), prefix_len)
}

/// Whether `ip` is in `cidr`, comparing canonical forms: `0.0.0.0/0` holds `::ffff:1.2.3.4` but
/// not `::1`, and `::/0` holds every address.
#[must_use]
pub fn cidr_contains(cidr: IpCidr, ip: IpAddr) -> bool {
    let (network, prefix_len) = canonical_cidr(cidr);
    contains(network, prefix_len, canonical(ip))
}

/// Whether the canonical network `network`/`prefix_len` holds the canonical address `addr`.
#[must_use]
pub fn contains(network: [u8; 16], prefix_len: u8, addr: [u8; 16]) -> bool {
    let mask = mask(prefix_len);
    u128::from_be_bytes(network) & mask == u128::from_be_bytes(addr) & mask
}

/// A canonical address as people write it: an IPv4-mapped address as dotted IPv4
/// (`127.0.0.2`), anything else in IPv6 notation (`::1`; `::7f00:2` for `::127.0.0.2`).
#[must_use]
pub fn display(addr: [u8; 16]) -> String {
    let v6 = Ipv6Addr::from(addr);
    match v6.to_ipv4_mapped() {
        Some(v4) => v4.to_string(),
        None => v6.to_string(),
    }
}

/// A canonical network as people write it: `10.0.0.0/8` for a network inside `::ffff:0:0/96`,
/// IPv6 notation (`fd00::/8`, `::ffff:0.0.0.0/95`) for any other.
#[must_use]
pub fn display_cidr(network: [u8; 16], prefix_len: u8) -> String {
    match Ipv6Addr::from(network).to_ipv4_mapped() {
        Some(v4) if prefix_len >= IPV4_MAPPED_PREFIX_LEN => {
            format!("{v4}/{}", prefix_len - IPV4_MAPPED_PREFIX_LEN)
        }
        _ => format!("{}/{prefix_len}", Ipv6Addr::from(network)),
    }
}

/// The `u128` whose first `prefix_len` bits (capped at 128) are set.
fn mask(prefix_len: u8) -> u128 {
    match u32::from(prefix_len) {
        0 => 0,
        len @ 1..128 => u128::MAX << (128 - len),
        _ => u128::MAX,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse()
            .unwrap_or_else(|error| panic!("{text:?} is an IP address: {error}"))
    }

    fn cidr(text: &str) -> IpCidr {
        text.parse()
            .unwrap_or_else(|problem| panic!("{text:?} is a CIDR: {problem}"))
    }

    fn v6(text: &str) -> [u8; 16] {
        text.parse::<Ipv6Addr>()
            .unwrap_or_else(|error| panic!("{text:?} is an IPv6 address: {error}"))
            .octets()
    }

    #[test]
    fn ipv4_becomes_ipv4_mapped() {
        assert_eq!(canonical(ip("127.0.0.2")), v6("::ffff:127.0.0.2"));
        assert_eq!(
            canonical(ip("127.0.0.2")),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 2]
        );
        assert_eq!(canonical(ip("0.0.0.0")), v6("::ffff:0:0"));
        assert_eq!(canonical(ip("255.255.255.255")), v6("::ffff:ffff:ffff"));
    }

    #[test]
    fn mapped_ipv6_is_the_same_value_as_ipv4() {
        assert_eq!(
            canonical(ip("::ffff:127.0.0.2")),
            canonical(ip("127.0.0.2"))
        );
        assert_eq!(canonical(ip("::ffff:7f00:2")), canonical(ip("127.0.0.2")));
        assert_eq!(
            canonical_cidr(cidr("::ffff:10.0.0.0/104")),
            canonical_cidr(cidr("10.0.0.0/8"))
        );
    }

    #[test]
    fn ipv6_is_kept_and_ipv4_compatible_is_not_mapped() {
        assert_eq!(canonical(ip("::1")), v6("::1"));
        assert_eq!(canonical(ip("fd00::1")), v6("fd00::1"));
        // `::a.b.c.d` is a deprecated IPv6 form, not an IPv4 address.
        let compatible = canonical(ip("::127.0.0.2"));
        assert_eq!(compatible, v6("::7f00:2"));
        assert_ne!(compatible, canonical(ip("127.0.0.2")));
        assert_eq!(display(compatible), "::7f00:2");
    }

    #[test]
    fn ipv4_cidrs_become_mapped_cidrs() {
        assert_eq!(
            canonical_cidr(cidr("10.0.0.0/8")),
            (v6("::ffff:10.0.0.0"), 104)
        );
        assert_eq!(
            canonical_cidr(cidr("127.0.0.2/32")),
            (v6("::ffff:127.0.0.2"), 128)
        );
        assert_eq!(canonical_cidr(cidr("0.0.0.0/0")), (v6("::ffff:0:0"), 96));
        assert_eq!(canonical_cidr(cidr("fd00::/8")), (v6("fd00::"), 8));
        assert_eq!(canonical_cidr(cidr("::/0")), (v6("::"), 0));
        assert_eq!(
            canonical_cidr(IpCidr::host(ip("::1"))),
            (v6("::1"), 128),
            "a single address is a /128"
        );
    }

    #[test]
    fn all_of_ipv4_does_not_cover_native_ipv6() {
        let (network, prefix_len) = canonical_cidr(cidr("0.0.0.0/0"));
        assert_eq!(display_cidr(network, prefix_len), "0.0.0.0/0");
        for v4 in ["0.0.0.0", "10.1.2.3", "255.255.255.255", "::ffff:1.2.3.4"] {
            assert!(
                contains(network, prefix_len, canonical(ip(v4))),
                "0.0.0.0/0 must cover {v4}"
            );
        }
        for v6 in [
            "::",
            "::1",
            "fd00::1",
            "::1.2.3.4",
            "::fffe:1.2.3.4",
            "2001:db8::",
        ] {
            assert!(
                !contains(network, prefix_len, canonical(ip(v6))),
                "0.0.0.0/0 must not cover {v6}"
            );
        }
    }

    #[test]
    fn all_of_ipv6_covers_everything() {
        let (network, prefix_len) = canonical_cidr(cidr("::/0"));
        for any in [
            "::",
            "::1",
            "fd00::1",
            "ffff::",
            "0.0.0.0",
            "10.1.2.3",
            "::ffff:1.2.3.4",
        ] {
            assert!(
                contains(network, prefix_len, canonical(ip(any))),
                "::/0 must cover {any}"
            );
        }
    }

    #[test]
    fn cidrs_contain_their_addresses_only() {
        let (network, prefix_len) = canonical_cidr(cidr("10.0.0.0/8"));
        assert!(contains(network, prefix_len, canonical(ip("10.255.0.1"))));
        assert!(!contains(network, prefix_len, canonical(ip("11.0.0.0"))));
        assert!(!contains(network, prefix_len, canonical(ip("::a00:1"))));
        let (network, prefix_len) = canonical_cidr(cidr("fd00::/8"));
        assert!(contains(network, prefix_len, canonical(ip("fdff::1"))));
        assert!(!contains(network, prefix_len, canonical(ip("fe00::"))));
        let one = canonical(ip("127.0.0.2"));
        assert!(contains(one, 128, one));
        assert!(!contains(one, 128, canonical(ip("127.0.0.3"))));
    }

    #[test]
    fn cidr_containment_uses_the_canonical_form() {
        let all_v4: IpCidr = "0.0.0.0/0".parse().expect("valid");
        assert!(cidr_contains(all_v4, ip("203.0.113.9")));
        assert!(cidr_contains(all_v4, ip("::ffff:203.0.113.9")));
        assert!(!cidr_contains(all_v4, ip("::1")));
        let all: IpCidr = "::/0".parse().expect("valid");
        assert!(cidr_contains(all, ip("203.0.113.9")) && cidr_contains(all, ip("fd00::1")));
        let mapped: IpCidr = "::ffff:10.0.0.0/104".parse().expect("valid");
        assert!(cidr_contains(mapped, ip("10.9.8.7")));
        assert!(!cidr_contains(mapped, ip("11.0.0.1")));
    }

    #[test]
    fn canonical_cidrs_have_no_host_bits() {
        // `IpCidr` already refuses host bits; the canonical form does not rely on it.
        let (network, prefix_len) = canonical_cidr(cidr("10.0.0.0/8"));
        assert_eq!(network, v6("::ffff:10.0.0.0"));
        assert_eq!(prefix_len, 104);
    }

    #[test]
    fn display_prints_mapped_addresses_as_ipv4() {
        assert_eq!(display(canonical(ip("127.0.0.2"))), "127.0.0.2");
        assert_eq!(display(canonical(ip("::ffff:10.0.0.1"))), "10.0.0.1");
        assert_eq!(display(canonical(ip("0.0.0.0"))), "0.0.0.0");
        assert_eq!(display(canonical(ip("::1"))), "::1");
        assert_eq!(display(canonical(ip("fd00::1"))), "fd00::1");
        assert_eq!(display(canonical(ip("::"))), "::");
        assert_eq!(
            display(v6("::fffe:7f00:2")),
            "::fffe:7f00:2",
            "only ::ffff:0:0/96 is IPv4"
        );
        for v4 in [
            Ipv4Addr::LOCALHOST,
            Ipv4Addr::BROADCAST,
            Ipv4Addr::new(192, 0, 2, 7),
        ] {
            assert_eq!(display(canonical(IpAddr::V4(v4))), v4.to_string());
        }
    }

    #[test]
    fn display_cidr_prints_ipv4_networks_as_ipv4() {
        let shown = |text: &str| {
            let (network, prefix_len) = canonical_cidr(cidr(text));
            display_cidr(network, prefix_len)
        };
        assert_eq!(shown("10.0.0.0/8"), "10.0.0.0/8");
        assert_eq!(shown("::ffff:10.0.0.0/104"), "10.0.0.0/8");
        assert_eq!(shown("::ffff:0:0/96"), "0.0.0.0/0");
        assert_eq!(shown("fd00::/8"), "fd00::/8");
        assert_eq!(shown("::/0"), "::/0");
        assert_eq!(display_cidr(v6("::ffff:0:0"), 95), "::ffff:0.0.0.0/95");
    }
}
