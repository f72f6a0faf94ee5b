//! Egress control: an agent reaches only the peers its allowlist names, by every way of
//! sending; local sockets that hand out authority are refused; untagged processes are free.
use std::{
    fs,
    net::{TcpListener, TcpStream, UdpSocket},
    os::unix::net::{UnixDatagram, UnixListener},
    path::Path,
    time::Duration,
};

use kya_tests::{Daemon, EPERM, Fixture, OpResult, events, eventually, op, op_with_fd};

/// The test config: coder may reach a few loopback peers; ops has no allowlist and no DNS.
pub(crate) fn config(fixture: &Fixture) -> String {
    let (coder, ops) = fixture
        .config
        .split_once("[[agents]]\nname = \"ops\"")
        .expect("fixture has an ops agent");
    format!(
        r#"{coder}[agents.network]
allow = ["127.0.0.2:8080", "[::1]:8081", "localhost:7000", "db.internal:5432"]
unix_deny = ["/run/kya-test/secret.sock"]

[[agents]]
name = "ops"{ops}[agents.network]
allow_dns = false
"#
    )
}

/// Name resolution inside the VM: /etc/hosts for the host-name rules, a resolver on loopback.
pub(crate) fn write_name_service() {
    fs::write(
        "/etc/hosts",
        "127.0.0.1 localhost\n::1 localhost\n127.0.0.5 db.internal\n",
    )
    .unwrap();
    fs::write("/etc/resolv.conf", "nameserver 127.0.0.53\n").unwrap();
}

pub(crate) fn tcp_listener(address: &str) -> TcpListener {
    TcpListener::bind(address).unwrap_or_else(|error| panic!("listen on {address}: {error}"))
}

pub(crate) fn assert_denied(result: &OpResult, what: &str) {
    assert_eq!(result, &Err(EPERM), "{what} must be denied with EPERM");
}

pub(crate) fn assert_allowed(result: &OpResult, what: &str) {
    assert!(result.is_ok(), "{what} must succeed, got {result:?}");
}

#[test]
fn tcp_connects_reach_only_allowlisted_peers_in_any_address_form() {
    let fixture = Fixture::new();
    write_name_service();
    let _listeners = [
        tcp_listener("127.0.0.2:8080"),
        tcp_listener("127.0.0.2:8081"),
        tcp_listener("127.0.0.3:8080"),
        tcp_listener("[::1]:8081"),
        tcp_listener("[::1]:8080"),
        tcp_listener("127.0.0.1:7000"),
        tcp_listener("[::1]:7000"),
    ];
    let _daemon = Daemon::start(&config(&fixture));
    for (address, port) in [
        ("127.0.0.2", "8080"),
        ("::ffff:127.0.0.2", "8080"),
        ("::1", "8081"),
        ("127.0.0.1", "7000"),
        ("::1", "7000"),
    ] {
        assert_allowed(
            &op(Some("coder"), &["tcp-connect", address, port]),
            &format!("coder to {address} port {port}"),
        );
    }
    for (address, port) in [
        ("127.0.0.3", "8080"),
        ("127.0.0.2", "8081"),
        ("::1", "8080"),
        ("::ffff:127.0.0.3", "8080"),
    ] {
        assert_denied(
            &op(Some("coder"), &["tcp-connect", address, port]),
            &format!("coder to {address} port {port}"),
        );
        assert_denied(
            &op(Some("ops"), &["tcp-connect", address, port]),
            &format!("ops to {address} port {port}"),
        );
        assert_allowed(
            &op(None, &["tcp-connect", address, port]),
            &format!("untagged to {address} port {port}"),
        );
    }
    assert_denied(
        &op(Some("coder"), &["uring-connect", "127.0.0.3", "8080"]),
        "io_uring",
    );
    assert_allowed(
        &op(Some("coder"), &["uring-connect", "127.0.0.2", "8080"]),
        "io_uring",
    );
    assert_denied(
        &op(Some("coder"), &["tcp-fastopen", "127.0.0.3", "8080"]),
        "TCP Fast Open",
    );
    assert_ne!(
        op(None, &["tcp-fastopen", "127.0.0.3", "8080"]),
        Err(EPERM),
        "untagged TCP Fast Open is not refused"
    );
}

#[test]
fn datagrams_reach_only_allowlisted_peers_by_every_send_call() {
    let fixture = Fixture::new();
    write_name_service();
    let _sinks = [
        UdpSocket::bind("127.0.0.2:8080").unwrap(),
        UdpSocket::bind("127.0.0.3:8080").unwrap(),
        UdpSocket::bind("[::1]:8081").unwrap(),
    ];
    let _daemon = Daemon::start(&config(&fixture));
    for scenario in ["udp-connect-send", "udp-sendto", "udp-sendmmsg"] {
        assert_allowed(
            &op(Some("coder"), &[scenario, "127.0.0.2", "8080"]),
            &format!("{scenario} to an allowed peer"),
        );
        assert_allowed(
            &op(Some("coder"), &[scenario, "::1", "8081"]),
            &format!("{scenario} to an allowed IPv6 peer"),
        );
        for (address, port) in [("127.0.0.3", "8080"), ("::ffff:127.0.0.3", "8080")] {
            assert_denied(
                &op(Some("coder"), &[scenario, address, port]),
                &format!("{scenario} to {address}"),
            );
            assert_allowed(
                &op(None, &[scenario, address, port]),
                &format!("untagged {scenario} to {address}"),
            );
        }
    }
}

#[test]
fn sockets_connected_elsewhere_cannot_be_used() {
    let fixture = Fixture::new();
    write_name_service();
    let _sinks = [
        UdpSocket::bind("127.0.0.2:8080").unwrap(),
        UdpSocket::bind("127.0.0.3:8080").unwrap(),
    ];
    let listener = tcp_listener("127.0.0.3:9000");
    let _daemon = Daemon::start(&config(&fixture));
    let udp = |peer: &str| {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.connect(peer).unwrap();
        fs::File::from(std::os::fd::OwnedFd::from(socket))
    };
    assert_denied(
        &op_with_fd(Some("coder"), &udp("127.0.0.3:8080"), &["send-fd", "3"]),
        "an inherited UDP socket connected to a refused peer",
    );
    assert_allowed(
        &op_with_fd(Some("coder"), &udp("127.0.0.2:8080"), &["send-fd", "3"]),
        "an inherited UDP socket connected to an allowed peer",
    );
    let tcp = fs::File::from(std::os::fd::OwnedFd::from(
        TcpStream::connect("127.0.0.3:9000").unwrap(),
    ));
    let _accepted = listener.accept().unwrap();
    assert_denied(
        &op_with_fd(Some("coder"), &tcp, &["send-fd", "3"]),
        "an inherited TCP connection to a refused peer",
    );
    assert_allowed(
        &op_with_fd(None, &tcp, &["send-fd", "3"]),
        "the same, untagged",
    );
}

#[test]
fn resolvers_are_reachable_on_port_53_unless_turned_off() {
    let fixture = Fixture::new();
    write_name_service();
    let _resolver = UdpSocket::bind("127.0.0.53:53").unwrap();
    let _daemon = Daemon::start(&config(&fixture));
    assert_allowed(
        &op(Some("coder"), &["udp-sendto", "127.0.0.53", "53"]),
        "coder's DNS",
    );
    assert_denied(
        &op(Some("coder"), &["udp-sendto", "127.0.0.53", "54"]),
        "not port 53",
    );
    assert_denied(
        &op(Some("ops"), &["udp-sendto", "127.0.0.53", "53"]),
        "ops: allow_dns = false",
    );
}

#[test]
fn unix_sockets_that_hand_out_authority_are_refused() {
    let fixture = Fixture::new();
    write_name_service();
    fs::create_dir_all("/run/kya-test").unwrap();
    fs::create_dir_all("/tmp/ssh-kyaTEST").unwrap();
    let bind = |path: &str| {
        let _ = fs::remove_file(path);
        UnixListener::bind(path).unwrap()
    };
    let _sockets = [
        bind("/run/docker.sock"),
        bind("/run/kya-test/secret.sock"),
        bind("/tmp/ssh-kyaTEST/agent.4242"),
        bind("/run/kya-test/plain.sock"),
    ];
    let _ = fs::remove_file("/run/kya-test/secret.dgram");
    let _datagram = UnixDatagram::bind("/run/kya-test/secret.dgram").unwrap();
    let daemon_config = config(&fixture)
        .replace(
            "unix_deny = [\"/run/kya-test/secret.sock\"]",
            "unix_deny = [\"/run/kya-test/secret.sock\", \"/run/kya-test/secret.dgram\"]",
        )
        .replace(
            "allow_dns = false\n",
            "allow_dns = false\nunix_allow = [\"/run/kya-test/secret.sock\"]\n",
        );
    let _daemon = Daemon::start(&daemon_config);
    for path in ["/run/docker.sock", "/tmp/ssh-kyaTEST/agent.4242"] {
        assert_denied(&op(Some("coder"), &["unix-connect", path]), path);
        assert_denied(&op(Some("ops"), &["unix-connect", path]), path);
        assert_allowed(
            &op(None, &["unix-connect", path]),
            &format!("untagged {path}"),
        );
    }
    assert_denied(
        &op(
            Some("coder"),
            &["unix-connect", "/run/kya-test/secret.sock"],
        ),
        "coder's unix_deny",
    );
    assert_allowed(
        &op(Some("ops"), &["unix-connect", "/run/kya-test/secret.sock"]),
        "another agent's unix_deny, in this agent's unix_allow",
    );
    assert_denied(
        &op(
            Some("coder"),
            &["unix-sendto", "/run/kya-test/secret.dgram"],
        ),
        "a datagram to a denied socket",
    );
    // An ordinary socket is refused too when its server is outside the agent (see deputies).
    assert_denied(
        &op(Some("coder"), &["unix-connect", "/run/kya-test/plain.sock"]),
        "an ordinary socket served outside the agent",
    );
    assert_allowed(
        &op(None, &["unix-connect", "/run/kya-test/plain.sock"]),
        "untagged, an ordinary socket",
    );
    assert!(Path::new("/run/docker.sock").exists());
}

#[test]
fn an_agent_can_answer_connections_it_accepts() {
    use std::io::{BufRead as _, BufReader, Read as _};
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&config(&fixture));
    let mut server = std::process::Command::new(kya_tests::bin("kya"))
        .args(["run", "--agent", "coder", "--"])
        .arg(kya_tests::bin("kya-probe"))
        .args(["tcp-serve-once", "127.0.0.4", "7100"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "listening");
    // The client (untagged) is on no allowlist of the agent; the reply still reaches it.
    let mut client = TcpStream::connect("127.0.0.4:7100").unwrap();
    let mut reply = String::new();
    client.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "hello", "the agent's reply arrived");
    let result = lines.next().unwrap().unwrap();
    assert!(result.starts_with("result ok answered"), "{result}");
    assert!(server.wait().unwrap().success());
}

#[test]
fn raw_and_packet_sockets_are_refused_to_agents() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&config(&fixture));
    for scenario in ["raw-socket", "packet-socket"] {
        assert_denied(&op(Some("coder"), &[scenario]), scenario);
        assert_allowed(&op(None, &[scenario]), &format!("untagged {scenario}"));
    }
}

#[test]
fn a_refused_connection_reaches_the_daemon_with_peer_and_host_name() {
    let fixture = Fixture::new();
    write_name_service();
    let _daemon = Daemon::start(&config(&fixture));
    assert_denied(
        &op(Some("coder"), &["tcp-connect", "127.0.0.3", "8080"]),
        "refused peer",
    );
    assert_denied(
        &op(Some("coder"), &["tcp-connect", "127.0.0.5", "6000"]),
        "db.internal on another port",
    );
    let found = eventually(Duration::from_secs(5), || {
        let all = events();
        all.iter().any(|event| {
            event["kind"] == "connect"
                && event["agent"] == "coder"
                && event["peer"] == "127.0.0.3:8080"
                && event["protocol"] == "tcp"
        }) && all
            .iter()
            .any(|event| event["peer"] == "127.0.0.5:6000" && event["host"] == "db.internal")
    });
    assert!(found, "no matching events in {:#?}", events());
}
