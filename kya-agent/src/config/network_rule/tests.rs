//! `network.allow` rule tests: every form that parses, and each mistake named with its fix.

use std::net::IpAddr;

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
