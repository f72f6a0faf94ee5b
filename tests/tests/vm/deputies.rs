//! Deputies: an agent cannot get a process outside it to act for it over a unix socket. A
//! tagged process reaches only servers of its own agent, the sockets its `network.unix_allow`
//! names or a grant covers, and a short built-in list of sockets that serve without acting for
//! their callers; everything else is refused with EPERM and an event, by connect, by datagram
//! and by sends on connections it inherited. Untagged processes are untouched.
//!
//! The helpers are real where the VM has them (tmux, dbus-daemon, git's credential cache,
//! gpg-agent) and otherwise `kya-probe unix-deputy`, which copies any file it is asked for:
//! an output file that never appears shows that no deputy acted.
use std::{
    fs,
    io::Write as _,
    os::{
        fd::{AsRawFd as _, OwnedFd},
        unix::{fs::PermissionsExt as _, process::CommandExt as _},
    },
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use kya_tests::{
    Checks, Daemon, Fixture, OpResult, Probe, bin, events, eventually, kya, kya_as, op, op_exe,
    op_with_fd, scratch, serve_descriptor,
};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, bind, connect, socket};

/// A file only alice may read, that deputies are asked to copy.
const SECRET: &str = "/home/alice/.aws/credentials";
const SECRET_TEXT: &str = "aws_secret_access_key = kya-deputy-test\n";
const ALICE: u32 = 1000;
/// Sockets coder's `unix_allow` names.
const ALLOWED: &str = "/run/kya-test/allowed.sock";
const ALLOWED_NAME: &str = "@kya-allowed";
/// A socket coder's `unix_deny` names.
const DENIED: &str = "/run/kya-test/denied.sock";
/// The built-in sockets that serve without acting for their callers, with their kind.
const SERVING: [(&str, &str); 7] = [
    ("/run/systemd/journal/socket", "dgram"),
    ("/run/systemd/notify", "dgram"),
    ("/run/systemd/journal/dev-log", "dgram"),
    ("/run/systemd/journal/stdout", "stream"),
    ("/run/nscd/socket", "stream"),
    ("/run/systemd/resolve/io.systemd.Resolve", "stream"),
    ("/run/systemd/userdb/io.systemd.DynamicUser", "stream"),
];

/// The fixture's config: alice approves for coder; coder may reach [`ALLOWED`], the Docker
/// socket (a credential socket, opened by an exact entry) and `extra_allow`, and not
/// [`DENIED`]; ops has no unix rules.
fn config(fixture: &Fixture, extra_allow: &[&str]) -> String {
    let (coder, ops) = fixture.split_at_ops_with_alice_approving();
    let allow: Vec<String> = [ALLOWED, "/run/docker.sock"]
        .iter()
        .chain(extra_allow)
        .map(|entry| format!("\"{entry}\""))
        .collect();
    format!(
        "{coder}[agents.network]\nunix_allow = [{}]\nunix_deny = [\"{DENIED}\"]\n\n\
         [[agents]]\nname = \"ops\"{ops}",
        allow.join(", ")
    )
}

/// Plants [`SECRET`] and returns a scratch directory for `test` that everyone may write to
/// (deputies running as alice write their copies there).
fn prepare(test: &str) -> PathBuf {
    let secret = Path::new(SECRET);
    fs::create_dir_all(secret.parent().unwrap()).unwrap();
    fs::write(secret, SECRET_TEXT).unwrap();
    std::os::unix::fs::chown(secret, Some(ALICE), Some(ALICE)).unwrap();
    fs::set_permissions(secret, fs::Permissions::from_mode(0o600)).unwrap();
    fs::create_dir_all("/run/kya-test").unwrap();
    let dir = scratch(test);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// `/run/user/1000`, alice's runtime directory, as a login would make it.
fn alice_runtime_dir() -> &'static str {
    let dir = "/run/user/1000";
    fs::create_dir_all(dir).unwrap();
    std::os::unix::fs::chown(dir, Some(ALICE), Some(ALICE)).unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// Runs `kya-probe ARGS` as `agent` or untagged (`None`). An agent runs the copy of the probe
/// its `match.exe` names, tagged at exec: faster than `kya run`, which asks the daemon.
fn probe(fixture: &Fixture, agent: Option<&str>, args: &[&str]) -> OpResult {
    match agent {
        Some("coder") => op_exe(&fixture.coder_exe, args),
        Some("ops") => op_exe(&fixture.ops_exe, args),
        Some(other) => panic!("no probe copy for agent {other}"),
        None => op(None, args),
    }
}

/// An untagged `kya-probe unix-deputy` serving at `address`.
fn deputy(address: &str, kind: &str) -> Probe {
    Probe::plain(&["unix-deputy", address, kind])
}

/// Asks the deputy at `address` to copy [`SECRET`] to `out`, as `agent` or untagged.
fn ask(fixture: &Fixture, agent: Option<&str>, address: &str, kind: &str, out: &Path) -> OpResult {
    probe(
        fixture,
        agent,
        &["unix-ask", address, kind, SECRET, out.to_str().unwrap()],
    )
}

/// Where a deputy at `address` copies what `who` asked for.
fn out(dir: &Path, address: &str, kind: &str, who: &str) -> PathBuf {
    let name = address.trim_start_matches(['/', '@']).replace('/', "_");
    dir.join(format!("{name}-{kind}-{who}"))
}

/// Whether a deputy copied the secret to `out`.
fn copied(out: &Path) -> bool {
    fs::read_to_string(out).is_ok_and(|text| text == SECRET_TEXT)
}

/// `agents` ask the deputy at `address` in vain (refused with EPERM, and nothing is copied);
/// an untagged process asks and gets the copy. The untagged request is served after any that
/// got through, so the agents' copies would be there by then.
fn refused_to_agents(
    checks: &mut Checks,
    fixture: &Fixture,
    dir: &Path,
    (address, kind): (&str, &str),
    agents: &[&str],
) {
    for &agent in agents {
        checks.denied(
            &ask(
                fixture,
                Some(agent),
                address,
                kind,
                &out(dir, address, kind, agent),
            ),
            &format!("{agent} asks the deputy at {address} ({kind})"),
        );
    }
    let untagged = out(dir, address, kind, "untagged");
    checks.allowed(
        &ask(fixture, None, address, kind, &untagged),
        &format!("an untagged process asks the deputy at {address} ({kind})"),
    );
    checks.that(
        copied(&untagged),
        &format!("the deputy at {address} ({kind}) copied for the untagged process"),
    );
    for &agent in agents {
        checks.that(
            !out(dir, address, kind, agent).exists(),
            &format!("the deputy at {address} ({kind}) must not act for {agent}"),
        );
    }
}

/// A helper process of the test's, killed when the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `program` as alice in her home, with a terminal type for tmux.
fn as_alice(program: &str) -> Command {
    let mut command = Command::new(program);
    command
        .uid(ALICE)
        .gid(ALICE)
        .current_dir("/home/alice")
        .env("HOME", "/home/alice")
        .env("TERM", "xterm");
    command
}

/// `program` run by `agent` (through `kya run`), or untagged.
fn client(agent: Option<&str>, program: &str) -> Command {
    let mut command = match agent {
        Some(agent) => {
            let mut command = Command::new(bin("kya"));
            command.args(["run", "--agent", agent, "--", program]);
            command
        }
        None => Command::new(program),
    };
    command.env("TERM", "xterm");
    command
}

/// Runs `command` with `input` on its standard input.
fn run(command: &mut Command, input: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{command:?}: {error}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Starts a daemon that forks away (its standard streams go nowhere, so that nothing waits for
/// them to close) and waits for it to report success.
fn start_daemon(command: &mut Command) {
    let status = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|error| panic!("{command:?}: {error}"));
    assert!(status.success(), "{command:?}: {status}");
}

/// A real client refused by kya: it failed, saying EPERM.
fn refused_client(checks: &mut Checks, output: &Output, what: &str) {
    checks.that(
        !output.status.success()
            && String::from_utf8_lossy(&output.stderr).contains("Operation not permitted"),
        &format!(
            "{what}: must fail with EPERM, got {} {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    );
}

fn succeeded(checks: &mut Checks, output: &Output, what: &str) {
    checks.that(
        output.status.success(),
        &format!(
            "{what}: must succeed, got {} {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    );
}

/// Whether the daemon reported a refusal of `agent` at the unix socket `address`, naming the
/// socket and its server's pid (in whatever field: `pid` and `tid` are the client's).
fn unix_event(agent: &str, address: &str, server: u32) -> bool {
    events().iter().any(|event| {
        event["kind"] == "unix"
            && event["agent"] == agent
            && event
                .as_object()
                .is_some_and(|fields| fields.values().any(|value| value == address))
            && event.as_object().is_some_and(|fields| {
                fields.iter().any(|(key, value)| {
                    !["pid", "tid", "seq", "ino"].contains(&key.as_str()) && value == server
                })
            })
    })
}

#[test]
fn helpers_at_systemd_private_sockets_any_path_and_abstract_names_act_for_no_agent() {
    let fixture = Fixture::new();
    let dir = prepare("deputies_helpers");
    alice_runtime_dir();
    let deputies = [
        ("/run/systemd/private", "stream"),
        ("/run/user/1000/systemd/private", "stream"),
        ("/srv/helper/any.sock", "stream"),
        ("/srv/helper/any.seqpacket", "seqpacket"),
        ("/srv/helper/any.dgram", "dgram"),
        ("@kya-helper", "stream"),
        ("@kya-helper-seqpacket", "seqpacket"),
        ("@kya-helper-dgram", "dgram"),
    ];
    let servers: Vec<Probe> = deputies
        .iter()
        .map(|(address, kind)| deputy(address, kind))
        .collect();
    let _daemon = Daemon::start(&config(&fixture, &[]));
    let mut checks = Checks::default();
    for (index, (address, kind)) in deputies.into_iter().enumerate() {
        // Another agent is refused the same; asked of two, to keep the test short.
        let agents: &[&str] = if index % 5 == 0 {
            &["coder", "ops"]
        } else {
            &["coder"]
        };
        refused_to_agents(&mut checks, &fixture, &dir, (address, kind), agents);
        if kind == "dgram" {
            // Besides `sendto` from a bound socket: `connect` and `send`, and an unbound `sendto`.
            for args in [
                vec!["unix-connect", address, kind],
                vec!["unix-sendto", address],
            ] {
                checks.denied(
                    &probe(&fixture, Some("coder"), &args),
                    &format!("coder's {} to {address}", args[0]),
                );
            }
        }
    }
    for (index, address) in [(0, "/run/systemd/private"), (5, "@kya-helper")] {
        let server = servers[index].pid();
        if !eventually(Duration::from_secs(5), || {
            unix_event("coder", address, server)
        }) {
            checks.fail(format!(
                "no unix event naming {address} and server pid {server} in {:#?}",
                events()
            ));
        }
    }
    checks.finish();
}

#[test]
fn tmux_servers_run_commands_only_for_their_own_agent() {
    let fixture = Fixture::new();
    let dir = prepare("deputies_tmux");
    let alice_dir = Path::new("/tmp/tmux-1000");
    fs::create_dir_all(alice_dir).unwrap();
    std::os::unix::fs::chown(alice_dir, Some(ALICE), Some(ALICE)).unwrap();
    fs::set_permissions(alice_dir, fs::Permissions::from_mode(0o700)).unwrap();
    let alice = "/tmp/tmux-1000/default";
    start_daemon(as_alice("/usr/bin/tmux").args(["-S", alice, "new", "-d"]));
    let _daemon = Daemon::start(&config(&fixture, &[]));
    let mut checks = Checks::default();
    let tmux = |agent: Option<&str>, socket: &str, args: &[&str]| {
        run(
            client(agent, "/usr/bin/tmux")
                .args(["-S", socket])
                .args(args),
            "",
        )
    };
    let copy_to = |out: &Path| format!("cat {SECRET} > {}", out.display());

    // alice's server: the agent's request never reaches it; an untagged one does.
    let agents_copy = dir.join("from-alice-for-coder");
    refused_client(
        &mut checks,
        &tmux(
            Some("coder"),
            alice,
            &["new-window", &copy_to(&agents_copy)],
        ),
        "coder's tmux new-window on alice's server",
    );
    let untagged_copy = dir.join("from-alice-untagged");
    succeeded(
        &mut checks,
        &tmux(None, alice, &["new-window", &copy_to(&untagged_copy)]),
        "an untagged tmux new-window on alice's server",
    );
    checks.that(
        eventually(Duration::from_secs(10), || copied(&untagged_copy)),
        "alice's tmux ran the untagged client's command",
    );
    checks.that(
        !agents_copy.exists(),
        "alice's tmux must not run coder's command",
    );

    // coder's own server serves coder (and untagged clients), not another agent.
    let own = dir.join("coder-tmux");
    let own = own.to_str().unwrap();
    let started = client(Some("coder"), "/usr/bin/tmux")
        .args(["-S", own, "new", "-d"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    checks.that(started.success(), "coder starts its own tmux server");
    for who in ["coder", "untagged"] {
        let mark = dir.join(format!("own-tmux-{who}"));
        let agent = (who != "untagged").then_some(who);
        let command = format!("echo {who} > {}", mark.display());
        succeeded(
            &mut checks,
            &tmux(agent, own, &["new-window", &command]),
            &format!("{who}'s tmux new-window on coder's server"),
        );
        checks.that(
            eventually(Duration::from_secs(10), || mark.exists()),
            &format!("coder's tmux ran {who}'s command"),
        );
    }
    refused_client(
        &mut checks,
        &tmux(Some("ops"), own, &["new-window", "true"]),
        "ops's tmux new-window on coder's server",
    );
    for socket in [alice, own] {
        let _ = tmux(None, socket, &["kill-server"]);
    }
    checks.finish();
}

/// A D-Bus daemon listening at `address`, as a bus of the distribution would.
fn bus(dir: &Path, name: &str, address: &str, user: Option<u32>) -> Running {
    let config = dir.join(format!("{name}.conf"));
    fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={address}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"#
        ),
    )
    .unwrap();
    fs::create_dir_all(Path::new(address).parent().unwrap()).unwrap();
    let _ = fs::remove_file(address);
    let mut command = Command::new("/usr/bin/dbus-daemon");
    command
        .arg(format!("--config-file={}", config.display()))
        .arg("--nofork")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(uid) = user {
        command.uid(uid).gid(uid);
    }
    let daemon = Running(command.spawn().unwrap());
    assert!(
        eventually(Duration::from_secs(10), || Path::new(address).exists()),
        "dbus-daemon did not listen on {address}"
    );
    daemon
}

#[test]
fn the_session_and_system_buses_refuse_agents() {
    let fixture = Fixture::new();
    let dir = prepare("deputies_dbus");
    alice_runtime_dir();
    let session = "/run/user/1000/bus";
    let system = "/run/dbus/system_bus_socket";
    let _buses = [
        bus(&dir, "session", session, Some(ALICE)),
        bus(&dir, "system", system, None),
    ];
    let _daemon = Daemon::start(&config(&fixture, &[]));
    let mut checks = Checks::default();
    for address in [session, system] {
        let list_names = |agent| {
            run(
                client(agent, "/usr/bin/dbus-send")
                    .arg(format!("--bus=unix:path={address}"))
                    .args([
                        "--print-reply",
                        "--reply-timeout=5000",
                        "--dest=org.freedesktop.DBus",
                        "/",
                        "org.freedesktop.DBus.ListNames",
                    ]),
                "",
            )
        };
        let untagged = list_names(None);
        succeeded(
            &mut checks,
            &untagged,
            &format!("untagged dbus-send on {address}"),
        );
        checks.that(
            String::from_utf8_lossy(&untagged.stdout).contains("org.freedesktop.DBus"),
            &format!("the bus at {address} answered the untagged client"),
        );
        refused_client(
            &mut checks,
            &list_names(Some("coder")),
            &format!("coder's dbus-send on {address}"),
        );
        for agent in ["coder", "ops"] {
            checks.denied(
                &probe(&fixture, Some(agent), &["unix-connect", address]),
                &format!("{agent} connects to {address}"),
            );
        }
    }
    checks.finish();
}

#[test]
fn git_credential_cache_hands_no_token_to_an_agent() {
    let fixture = Fixture::new();
    prepare("deputies_git");
    let socket = "/home/alice/.cache/git/credential/socket";
    let _ = fs::remove_dir_all("/home/alice/.cache/git");
    // alice's git stores a token in its cache; the cache daemon starts for it.
    let stored = run(
        as_alice("/usr/bin/git").args(["credential-cache", "store"]),
        "protocol=https\nhost=forge.example\nusername=alice\npassword=kya-token\n\n",
    );
    assert!(
        stored.status.success(),
        "git credential-cache store: {stored:?}"
    );
    let _daemon = Daemon::start(&config(&fixture, &[]));
    let mut checks = Checks::default();
    let get = |agent| {
        run(
            client(agent, "/usr/bin/git")
                .args(["credential-cache", "get"])
                .env("HOME", "/home/alice"),
            "protocol=https\nhost=forge.example\n\n",
        )
    };
    let untagged = get(None);
    checks.that(
        String::from_utf8_lossy(&untagged.stdout).contains("password=kya-token"),
        &format!("the cache hands the token to an untagged git: {untagged:?}"),
    );
    let agents = get(Some("coder"));
    checks.that(
        !String::from_utf8_lossy(&agents.stdout).contains("kya-token"),
        "the cache must not hand the token to coder's git",
    );
    refused_client(&mut checks, &agents, "coder's git credential-cache get");
    checks.denied(
        &probe(&fixture, Some("coder"), &["unix-connect", socket]),
        "coder connects to git's credential cache",
    );
    let _ = run(
        client(None, "/usr/bin/git")
            .args(["credential-cache", "exit"])
            .env("HOME", "/home/alice"),
        "",
    );
    checks.finish();
}

#[test]
fn gpg_agent_answers_no_agent() {
    let fixture = Fixture::new();
    prepare("deputies_gpg");
    alice_runtime_dir();
    let home = "/home/alice/.gnupg";
    fs::create_dir_all(home).unwrap();
    std::os::unix::fs::chown(home, Some(ALICE), Some(ALICE)).unwrap();
    fs::set_permissions(home, fs::Permissions::from_mode(0o700)).unwrap();
    start_daemon(as_alice("/usr/bin/gpg-agent").args(["--homedir", home, "--daemon"]));
    let listed = run(
        as_alice("/usr/bin/gpgconf").args(["--homedir", home, "--list-dirs", "agent-socket"]),
        "",
    );
    let socket = String::from_utf8(listed.stdout).unwrap().trim().to_owned();
    assert!(
        socket.ends_with("/S.gpg-agent"),
        "gpg-agent's socket: {socket}"
    );
    let _daemon = Daemon::start(&config(&fixture, &[]));
    let mut checks = Checks::default();
    let ask_version = |agent| {
        run(
            client(agent, "/usr/bin/gpg-connect-agent").args([
                "--no-autostart",
                "-S",
                &socket,
                "GETINFO version",
                "/bye",
            ]),
            "",
        )
    };
    let untagged = ask_version(None);
    checks.that(
        String::from_utf8_lossy(&untagged.stdout).starts_with("D 2."),
        &format!("gpg-agent answers an untagged client: {untagged:?}"),
    );
    let agents = ask_version(Some("coder"));
    checks.that(
        !String::from_utf8_lossy(&agents.stdout).contains("D 2."),
        &format!("gpg-agent must not answer coder: {agents:?}"),
    );
    for agent in ["coder", "ops"] {
        checks.denied(
            &probe(&fixture, Some(agent), &["unix-connect", &socket]),
            &format!("{agent} connects to {socket}"),
        );
    }
    let _ = run(
        as_alice("/usr/bin/gpgconf").args(["--homedir", home, "--kill", "gpg-agent"]),
        "",
    );
    checks.finish();
}

/// A socket of `kind` that this (untagged) process connected to `address`, as a file to hand
/// to a child. A datagram socket is autobound first, so that the deputy can answer it.
fn connected(address: &str, kind: &str) -> fs::File {
    let kind = match kind {
        "stream" => SockType::Stream,
        "seqpacket" => SockType::SeqPacket,
        _ => SockType::Datagram,
    };
    let socket: OwnedFd = socket(AddressFamily::Unix, kind, SockFlag::empty(), None).unwrap();
    if kind == SockType::Datagram {
        bind(socket.as_raw_fd(), &UnixAddr::new_unnamed()).unwrap();
    }
    connect(socket.as_raw_fd(), &UnixAddr::new(address).unwrap()).unwrap();
    fs::File::from(socket)
}

#[test]
fn inherited_connections_to_a_refused_server_cannot_send() {
    let fixture = Fixture::new();
    let dir = prepare("deputies_inherited");
    let deputies = [
        ("/srv/helper/inherited.sock", "stream"),
        ("/srv/helper/inherited.seqpacket", "seqpacket"),
        ("/srv/helper/inherited.dgram", "dgram"),
    ];
    let _servers: Vec<Probe> = deputies
        .iter()
        .map(|(address, kind)| deputy(address, kind))
        .collect();
    // A helper coder may reach (its unix_allow) hands it a connection to a refused deputy.
    let handed = serve_descriptor(Path::new(ALLOWED), connected(deputies[0].0, "stream"));
    let _daemon = Daemon::start(&config(&fixture, &[]));
    let mut checks = Checks::default();
    let received = out(&dir, deputies[0].0, "received", "coder");
    checks.denied(
        &probe(
            &fixture,
            Some("coder"),
            &["unix-recv-ask", ALLOWED, SECRET, received.to_str().unwrap()],
        ),
        "coder asks over a stream socket it received, connected to a refused deputy",
    );
    handed.join().unwrap();
    for (address, kind) in deputies {
        // Each connection is closed before the next is made: the deputy serves one at a time.
        let agents = out(&dir, address, kind, "coder");
        checks.denied(
            &op_with_fd(
                Some("coder"),
                &connected(address, kind),
                &["unix-ask-fd", "3", SECRET, agents.to_str().unwrap()],
            ),
            &format!("coder asks over an inherited {kind} socket connected to {address}"),
        );
        for feed in ["sendfile-into-fd", "splice-into-fd"] {
            checks.denied(
                &op_with_fd(Some("coder"), &connected(address, kind), &[feed, "3"]),
                &format!("coder's {feed} into an inherited {kind} socket connected to {address}"),
            );
        }
        let untagged = out(&dir, address, kind, "untagged");
        checks.allowed(
            &op_with_fd(
                None,
                &connected(address, kind),
                &["unix-ask-fd", "3", SECRET, untagged.to_str().unwrap()],
            ),
            &format!("an untagged process asks over an inherited {kind} socket"),
        );
        checks.that(
            copied(&untagged) && !agents.exists() && !received.exists(),
            &format!("the deputy at {address} acted for the untagged process only"),
        );
    }
    checks.finish();
}

#[test]
fn an_agents_own_servers_serve_it_its_children_and_untagged_clients() {
    let fixture = Fixture::new();
    let dir = prepare("deputies_own");
    let plain = dir.join("plain.txt");
    fs::write(&plain, "plain\n").unwrap();
    let own = [
        (dir.join("own.sock"), "stream"),
        (dir.join("own.seqpacket"), "seqpacket"),
        (dir.join("own.dgram"), "dgram"),
    ];
    let _daemon = Daemon::start(&config(&fixture, &[]));
    let _servers: Vec<Probe> = own
        .iter()
        .map(|(path, kind)| {
            Probe::as_agent("coder", &["unix-deputy", path.to_str().unwrap(), kind])
        })
        .collect();
    let mut checks = Checks::default();
    for (path, kind) in &own {
        let address = path.to_str().unwrap();
        // A datagram server's answer to an untagged client would be a datagram from the agent
        // to a socket outside it: only coder asks those.
        let clients: &[&str] = if *kind == "dgram" {
            &["coder"]
        } else {
            &["coder", "untagged"]
        };
        for &who in clients {
            let copy = out(&dir, address, kind, who);
            let agent = (who != "untagged").then_some(who);
            checks.allowed(
                &probe(
                    &fixture,
                    agent,
                    &[
                        "unix-ask",
                        address,
                        kind,
                        plain.to_str().unwrap(),
                        copy.to_str().unwrap(),
                    ],
                ),
                &format!("{who} asks coder's own server at {address} ({kind})"),
            );
            checks.that(
                fs::read_to_string(&copy).is_ok_and(|text| text == "plain\n"),
                &format!("coder's own server at {address} ({kind}) acted for {who}"),
            );
        }
    }
    for kind in ["stream", "seqpacket", "dgram"] {
        let path = dir.join(format!("child.{kind}"));
        for address in [path.to_str().unwrap(), &format!("@kya-own-{kind}")] {
            checks.allowed(
                &probe(&fixture, Some("coder"), &["unix-own-server", address, kind]),
                &format!("coder serves at {address} ({kind}) and its child talks to it"),
            );
        }
        checks.allowed(
            &probe(&fixture, Some("coder"), &["unix-socketpair", kind]),
            &format!("coder's {kind} socketpair"),
        );
    }
    checks.finish();
}

#[test]
fn another_agents_servers_and_credential_sockets_stay_refused() {
    let fixture = Fixture::new();
    let dir = prepare("deputies_others");
    let _ = fs::remove_dir_all("/tmp/ssh-kyaOWN");
    let _daemon = Daemon::start(&config(&fixture, &[]));
    let theirs = dir.join("ops.sock");
    let theirs = theirs.to_str().unwrap();
    // Credential sockets stay refused even when the agent's own process serves them.
    let gpg_ssh = dir.join("S.gpg-agent.ssh");
    let credentials = ["/tmp/ssh-kyaOWN/agent.7", gpg_ssh.to_str().unwrap()];
    let _servers = [
        Probe::as_agent("ops", &["unix-deputy", theirs, "stream"]),
        Probe::as_agent("coder", &["unix-deputy", credentials[0], "stream"]),
        Probe::as_agent("coder", &["unix-deputy", credentials[1], "stream"]),
    ];
    let mut checks = Checks::default();
    checks.denied(
        &probe(&fixture, Some("coder"), &["unix-connect", theirs]),
        "coder connects to ops's server",
    );
    checks.allowed(
        &probe(&fixture, Some("ops"), &["unix-connect", theirs]),
        "ops connects to its own server",
    );
    for path in credentials {
        checks.denied(
            &probe(&fixture, Some("coder"), &["unix-connect", path]),
            &format!("coder connects to {path}, served by coder"),
        );
        checks.allowed(
            &op(None, &["unix-connect", path]),
            &format!("an untagged process connects to {path}"),
        );
    }
    checks.finish();
}

#[test]
fn unix_allow_opens_a_socket_by_path_or_abstract_name_for_that_agent_only() {
    let fixture = Fixture::new();
    let dir = prepare("deputies_allow");
    let deputies = [
        (ALLOWED, "stream"),
        (ALLOWED_NAME, "stream"),
        ("/run/docker.sock", "stream"),
    ];
    let _servers: Vec<Probe> = deputies
        .iter()
        .map(|(address, kind)| deputy(address, kind))
        .collect();
    let _daemon = Daemon::start(&config(&fixture, &[ALLOWED_NAME]));
    let mut checks = Checks::default();
    for (address, kind) in deputies {
        for who in ["coder", "untagged"] {
            let copy = out(&dir, address, kind, who);
            let agent = (who != "untagged").then_some(who);
            checks.allowed(
                &ask(&fixture, agent, address, kind, &copy),
                &format!("{who} asks the deputy at {address}, in coder's unix_allow"),
            );
            checks.that(
                copied(&copy),
                &format!("the deputy at {address} acted for {who}"),
            );
        }
        checks.denied(
            &ask(
                &fixture,
                Some("ops"),
                address,
                kind,
                &out(&dir, address, kind, "ops"),
            ),
            &format!("ops asks the deputy at {address}, in coder's unix_allow only"),
        );
    }
    checks.finish();
}

/// `kya grant --agent coder ARGS` as root; returns the grant id, or records why not.
fn grant(checks: &mut Checks, args: &[&str]) -> Option<String> {
    let mut all = vec!["grant", "--agent", "coder"];
    all.extend_from_slice(args);
    let output = kya(&all);
    if !output.status.success() {
        checks.fail(format!(
            "kya {}: {}",
            all.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
        return None;
    }
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .map(str::to_owned)
}

/// The id of the pending request whose resource names `address`, waiting for it to appear.
fn pending_request(address: &str) -> Option<String> {
    let mut found = None;
    eventually(Duration::from_secs(10), || {
        let output = kya(&["pending", "--json"]);
        let requests: Vec<serde_json::Value> =
            serde_json::from_slice(&output.stdout).unwrap_or_default();
        found = requests.into_iter().find(|request| {
            request["agent"] == "coder"
                && request["resource"]
                    .as_str()
                    .is_some_and(|resource| resource.contains(address))
        });
        found.is_some()
    });
    Some(found?["id"].as_str()?.to_owned())
}

#[test]
fn grants_open_a_socket_once_or_for_a_while() {
    let fixture = Fixture::new();
    let dir = prepare("deputies_grants");
    let (path, name, datagrams) = (
        "/srv/helper/granted.sock",
        "@kya-granted",
        "/srv/helper/granted.dgram",
    );
    let _servers = [
        deputy(path, "stream"),
        deputy(name, "stream"),
        deputy(datagrams, "dgram"),
    ];
    let _daemon = Daemon::start_clean(&config(&fixture, &[]));
    let mut checks = Checks::default();
    let mut attempt = 0;
    let mut coder_asks = |address: &str, kind: &str| {
        attempt += 1;
        ask(
            &fixture,
            Some("coder"),
            address,
            kind,
            &dir.join(format!("copy-{attempt}")),
        )
    };

    // A refusal becomes a pending request; alice approves one connection.
    checks.denied(&coder_asks(path, "stream"), "coder asks before any grant");
    match pending_request(path) {
        Some(id) => {
            let approved = kya_as(ALICE, &["approve", &id, "--once"]);
            succeeded(&mut checks, &approved, "alice approves the request once");
            checks.allowed(&coder_asks(path, "stream"), "the approved connection");
            checks.denied(&coder_asks(path, "stream"), "a second connection");
        }
        None => checks.fail(format!(
            "no pending request for {path}: {}",
            String::from_utf8_lossy(&kya(&["pending"]).stdout)
        )),
    }

    // Granted ahead of time: one datagram.
    grant(&mut checks, &["--unix", datagrams, "--once"]);
    checks.allowed(&coder_asks(datagrams, "dgram"), "the granted datagram");
    checks.denied(&coder_asks(datagrams, "dgram"), "a second datagram");

    // For a while, by abstract name, until revoked; for coder only.
    let id = grant(&mut checks, &["--unix", name, "--for", "10m"]).unwrap_or_default();
    for _ in 0..2 {
        checks.allowed(
            &coder_asks(name, "stream"),
            "coder asks under a grant for 10m",
        );
    }
    checks.denied(
        &ask(&fixture, Some("ops"), name, "stream", &dir.join("copy-ops")),
        "ops asks under coder's grant",
    );
    let revoked = kya(&["revoke", &id]);
    succeeded(&mut checks, &revoked, "kya revoke");
    checks.denied(
        &coder_asks(name, "stream"),
        "coder asks after the revocation",
    );
    checks.finish();
}

#[test]
fn built_in_serving_sockets_stay_reachable_for_agents() {
    let fixture = Fixture::new();
    let dir = prepare("deputies_serving");
    let _servers: Vec<Probe> = SERVING
        .iter()
        .map(|(address, kind)| deputy(address, kind))
        .collect();
    // Not on the list, beside ones that are: userdb's multiplexer hands root callers password
    // hashes.
    let unlisted = [
        ("/run/systemd/journal/kya-unlisted", "dgram"),
        ("/run/systemd/userdb/io.systemd.Multiplexer", "stream"),
    ];
    let _unlisted: Vec<Probe> = unlisted
        .iter()
        .map(|(address, kind)| deputy(address, kind))
        .collect();
    let _ = fs::remove_file("/dev/log");
    std::os::unix::fs::symlink("/run/systemd/journal/dev-log", "/dev/log").unwrap();
    let _daemon = Daemon::start(&config(&fixture, &[]));
    let mut checks = Checks::default();
    for (address, kind) in SERVING.iter().chain(&[("/dev/log", "dgram")]) {
        checks.allowed(
            &ask(
                &fixture,
                Some("coder"),
                address,
                kind,
                &out(&dir, address, kind, "coder"),
            ),
            &format!("coder reaches {address}"),
        );
    }
    checks.allowed(
        &probe(&fixture, Some("coder"), &["unix-sendto", "/dev/log"]),
        "coder logs to /dev/log",
    );
    for (address, kind) in unlisted {
        checks.denied(
            &ask(
                &fixture,
                Some("coder"),
                address,
                kind,
                &out(&dir, address, kind, "coder"),
            ),
            &format!("coder asks {address}, beside the serving sockets"),
        );
    }
    checks.finish();
}
