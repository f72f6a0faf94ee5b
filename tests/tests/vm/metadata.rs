//! Cloud metadata endpoints are credentials: an allowlist range that covers one does not open
//! it to an agent, by any way of reaching it (TCP, UDP sends, IPv6, IPv4-mapped and
//! `AF_UNSPEC` names); only an entry naming the address itself or a grant does. The endpoints
//! are loopback aliases inside the VM, never a real network.
use std::{
    net::{TcpListener, UdpSocket},
    process::Command,
    time::Duration,
};

use kya_tests::{
    Checks, Daemon, EPERM, Fixture, config_path, events, eventually, kya, kya_agent, kya_as, op,
};
use serde_json::Value;

const ALICE: u32 = 1000;

/// The fixture's config with `coder_allow` and `ops_allow` as the agents' allowlists, no DNS,
/// and alice as coder's approver.
fn config(fixture: &Fixture, coder_allow: &str, ops_allow: &str) -> String {
    let (coder, ops) = fixture.split_at_ops_with_alice_approving();
    format!(
        "{coder}[agents.network]\nallow = [{coder_allow}]\nallow_dns = false\n\n[[agents]]\n\
         name = \"ops\"{ops}[agents.network]\nallow = [{ops_allow}]\nallow_dns = false\n"
    )
}

/// Makes `address` (`a.b.c.d/32` or `x::y/128`) a local address of the VM's loopback device.
fn loopback_alias(address: &str) {
    let family = if address.contains(':') { "-6" } else { "-4" };
    let listed = Command::new("ip")
        .args([family, "addr", "show", "dev", "lo"])
        .output()
        .expect("run ip");
    let bare = address.split('/').next().unwrap();
    if String::from_utf8_lossy(&listed.stdout).contains(&format!(" {bare}/")) {
        return;
    }
    let added = Command::new("ip")
        .args([family, "addr", "add", address, "dev", "lo"])
        .output()
        .expect("run ip");
    assert!(
        added.status.success(),
        "ip addr add {address} dev lo: {}",
        String::from_utf8_lossy(&added.stderr)
    );
}

/// The metadata endpoints the tests serve, on loopback.
fn serve_endpoints() -> Vec<TcpListener> {
    for address in [
        "169.254.169.254/32",
        "169.254.170.2/32",
        "100.100.100.200/32",
        "fd00:ec2::254/128",
    ] {
        loopback_alias(address);
    }
    [
        "169.254.169.254:80",
        "169.254.169.254:8080",
        "169.254.170.2:80",
        "100.100.100.200:80",
        "[fd00:ec2::254]:80",
        "[fd00:ec2::254]:8080",
        "127.0.0.3:80",
        "[::1]:8080",
    ]
    .into_iter()
    .map(listen)
    .collect()
}

/// A listener on `address`. A just-added IPv6 address is tentative for a moment (duplicate
/// address detection, seen on 6.12): binding it fails with EADDRNOTAVAIL until it is not.
fn listen(address: &str) -> TcpListener {
    let mut result = TcpListener::bind(address);
    for _ in 0..50 {
        match &result {
            Err(error) if error.kind() == std::io::ErrorKind::AddrNotAvailable => {
                std::thread::sleep(Duration::from_millis(100));
                result = TcpListener::bind(address);
            }
            _ => break,
        }
    }
    result.unwrap_or_else(|error| panic!("listen on {address}: {error}"))
}

/// `kya_denied_total{agent, kind="connect"}` as the metrics endpoint serves it now.
fn denied_connects(agent: &str) -> u64 {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect("127.0.0.1:9464").expect("metrics endpoint");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: kya\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let series = format!("kya_denied_total{{agent=\"{agent}\",kind=\"connect\"}} ");
    response
        .lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .unwrap_or_else(|| panic!("no series {series} in {response}"))
        .parse()
        .expect("a whole number")
}

/// [`denied_connects`] once it stops moving (the daemon reads the kernel's counts every
/// second): an earlier test's last denials must not land in this test's difference.
fn settled_denied_connects(agent: &str) -> u64 {
    let mut last = denied_connects(agent);
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(1_200));
        let now = denied_connects(agent);
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("kya_denied_total kept moving with no test running");
}

fn tcp(agent: Option<&str>, addr: &str, port: &str) -> kya_tests::OpResult {
    op(agent, &["tcp-connect", addr, port])
}

#[test]
fn ranges_that_cover_metadata_endpoints_do_not_open_them() {
    let fixture = Fixture::new();
    let _listeners = serve_endpoints();
    let _sinks = [
        UdpSocket::bind("169.254.169.254:80").unwrap(),
        UdpSocket::bind("127.0.0.3:80").unwrap(),
        UdpSocket::bind("[fd00:ec2::254]:8080").unwrap(),
    ];
    let _daemon = Daemon::start(&config(
        &fixture,
        r#""0.0.0.0/0:80", "[::/0]:8080""#,
        r#""0.0.0.0/0:*", "[::/0]:*""#,
    ));
    let mut checks = Checks::default();
    for (addr, port) in [
        ("169.254.169.254", "80"),
        ("169.254.170.2", "80"),
        ("100.100.100.200", "80"),
        ("::ffff:169.254.169.254", "80"),
        ("fd00:ec2::254", "8080"),
        // [::/0]:8080 covers the IPv4-mapped form of every IPv4 endpoint too.
        ("169.254.169.254", "8080"),
    ] {
        checks.denied(
            &tcp(Some("coder"), addr, port),
            &format!("coder (0.0.0.0/0:80, [::/0]:8080) to {addr} port {port}"),
        );
        checks.allowed(
            &tcp(None, addr, port),
            &format!("untagged to {addr} port {port}"),
        );
    }
    let before = settled_denied_connects("ops");
    for (addr, port) in [
        ("169.254.169.254", "80"),
        ("fd00:ec2::254", "80"),
        ("::ffff:100.100.100.200", "80"),
    ] {
        checks.denied(
            &tcp(Some("ops"), addr, port),
            &format!("ops (every address, every port) to {addr} port {port}"),
        );
    }
    checks.that(
        eventually(Duration::from_secs(5), || {
            denied_connects("ops") - before == 3
        }),
        &format!(
            "kya_denied_total{{agent=\"ops\",kind=\"connect\"}} must grow by 3, from {before} to {}",
            denied_connects("ops")
        ),
    );
    // Ordinary peers under the same ranges still connect.
    checks.allowed(
        &tcp(Some("coder"), "127.0.0.3", "80"),
        "coder to 127.0.0.3:80",
    );
    checks.allowed(&tcp(Some("coder"), "::1", "8080"), "coder to [::1]:8080");
    checks.allowed(&tcp(Some("ops"), "127.0.0.3", "80"), "ops to 127.0.0.3:80");
    check_datagrams(&mut checks);
    let reported = eventually(Duration::from_secs(5), || {
        events().iter().any(|event| {
            event["kind"] == "connect"
                && event["agent"] == "coder"
                && event["peer"] == "169.254.169.254:80"
                && event["why"]
                    .as_str()
                    .is_some_and(|why| why.contains("cloud metadata endpoint"))
        })
    });
    checks.that(
        reported,
        &format!(
            "a connect event naming the metadata endpoint, in {:#?}",
            events()
        ),
    );
    let check = kya_agent(&["check-config", config_path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&check.stdout);
    checks.that(
        check.status.success()
            && stdout.contains("warning: ")
            && stdout.contains("agent \"coder\": network.allow rule \"0.0.0.0/0:80\"")
            && stdout.contains("169.254.169.254"),
        &format!("check-config warns of the ranges: {stdout}"),
    );
    checks.finish();
}

/// Datagrams to the endpoints, by every send call and address form the egress rules know,
/// under the ranges of `ranges_that_cover_metadata_endpoints_do_not_open_them`.
fn check_datagrams(checks: &mut Checks) {
    for scenario in ["udp-sendto", "udp-connect-send", "udp-sendmmsg"] {
        checks.denied(
            &op(Some("coder"), &[scenario, "169.254.169.254", "80"]),
            &format!("coder {scenario} to 169.254.169.254:80"),
        );
        checks.denied(
            &op(Some("coder"), &[scenario, "fd00:ec2::254", "8080"]),
            &format!("coder {scenario} to [fd00:ec2::254]:8080"),
        );
        checks.allowed(
            &op(Some("coder"), &[scenario, "127.0.0.3", "80"]),
            &format!("coder {scenario} to 127.0.0.3:80"),
        );
        checks.allowed(
            &op(None, &[scenario, "169.254.169.254", "80"]),
            &format!("untagged {scenario} to 169.254.169.254:80"),
        );
    }
    for (kind, family, addr) in [
        ("udp4", "unspec", "169.254.169.254"),
        ("udp6", "inet", "169.254.169.254"),
        ("udp6", "inet6", "::ffff:169.254.169.254"),
    ] {
        checks.denied(
            &op(Some("coder"), &["sendto-family", kind, family, addr, "80"]),
            &format!("coder {kind} sendto an {family} name for {addr}:80"),
        );
    }
    checks.allowed(
        &op(
            Some("coder"),
            &["sendto-family", "udp4", "unspec", "127.0.0.3", "80"],
        ),
        "coder udp4 sendto an unspec name for 127.0.0.3:80",
    );
}

/// The pending request for the peer `peer`, waiting for it to appear.
fn pending_for(peer: &str) -> Value {
    let mut found = None;
    let appeared = eventually(Duration::from_secs(10), || {
        let output = kya(&["pending", "--json"]);
        let pending: Vec<Value> = serde_json::from_slice(&output.stdout).expect("JSON");
        found = pending.into_iter().find(|request| {
            request["kind"] == "connect"
                && request["resource"]
                    .as_str()
                    .is_some_and(|resource| resource.contains(peer))
        });
        found.is_some()
    });
    assert!(appeared, "no pending request for {peer}");
    found.unwrap()
}

#[test]
fn an_entry_naming_the_address_or_a_grant_opens_a_metadata_endpoint() {
    let fixture = Fixture::new();
    let _listeners = serve_endpoints();
    let _daemon = Daemon::start_clean(&config(
        &fixture,
        r#""0.0.0.0/0:*", "169.254.169.254:80""#,
        r#""0.0.0.0/0:*""#,
    ));
    let mut checks = Checks::default();
    checks.allowed(
        &tcp(Some("coder"), "169.254.169.254", "80"),
        "coder to 169.254.169.254:80, named exactly",
    );
    checks.allowed(
        &tcp(Some("coder"), "::ffff:169.254.169.254", "80"),
        "coder to the mapped form of 169.254.169.254:80, named exactly",
    );
    checks.denied(
        &tcp(Some("coder"), "169.254.169.254", "8080"),
        "coder to 169.254.169.254 on a port the entry does not name",
    );
    checks.denied(
        &tcp(Some("ops"), "169.254.169.254", "80"),
        "ops: coder's entry is not ops'",
    );
    // A grant for the exact peer opens it, once.
    checks.denied(
        &tcp(Some("coder"), "169.254.170.2", "80"),
        "coder to 169.254.170.2:80 before the grant",
    );
    let granted = kya(&[
        "grant",
        "--agent",
        "coder",
        "--connect",
        "169.254.170.2:80",
        "--once",
    ]);
    checks.that(
        granted.status.success(),
        &format!("kya grant: {}", String::from_utf8_lossy(&granted.stderr)),
    );
    checks.allowed(
        &tcp(Some("coder"), "169.254.170.2", "80"),
        "coder to 169.254.170.2:80 under a single-use grant",
    );
    checks.denied(
        &tcp(Some("coder"), "169.254.170.2", "80"),
        "coder to 169.254.170.2:80 once the grant is spent",
    );
    // A refusal becomes a pending request; its approval opens the endpoint once.
    assert_eq!(
        tcp(Some("coder"), "100.100.100.200", "80"),
        Err(EPERM),
        "coder to 100.100.100.200:80 before approval"
    );
    let request = pending_for("100.100.100.200:80");
    let id = request["id"].as_str().unwrap();
    let approved = kya_as(ALICE, &["approve", id, "--once"]);
    checks.that(
        approved.status.success(),
        &format!(
            "alice approves: {}",
            String::from_utf8_lossy(&approved.stderr)
        ),
    );
    checks.allowed(
        &tcp(Some("coder"), "100.100.100.200", "80"),
        "coder to 100.100.100.200:80 after approval",
    );
    checks.denied(
        &tcp(Some("coder"), "100.100.100.200", "80"),
        "coder to 100.100.100.200:80 again",
    );
    checks.finish();
}
