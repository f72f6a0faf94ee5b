//! Unix sockets for the deputy tests: one-shot operations that report `result ok ...` or
//! `result errno N` (the errno of the first step that failed), and a deputy server that acts
//! on every request it gets.
//!
//! An address is a path or `@name` for an abstract socket; a kind is `stream`, `seqpacket` or
//! `dgram`. A request to a deputy is one message `READ OUT`: the deputy copies the file `READ`
//! to `OUT` (what a tmux server or `systemd-run` would do for whoever asks) and answers `done`.
use std::{
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
        unix::fs::PermissionsExt as _,
    },
    time::Duration,
};

use nix::{
    errno::Errno,
    sys::{
        socket::{
            AddressFamily, Backlog, MsgFlags, SockFlag, SockType, UnixAddr, accept, bind, connect,
            listen, recv, recvfrom, send, sendto, setsockopt, socketpair, sockopt,
        },
        time::TimeVal,
        wait::{WaitStatus, waitpid},
    },
    unistd::{ForkResult, fork},
};

type Outcome = Result<String, Errno>;

/// How long a client waits for a deputy's answer, and a deputy for a client's request.
const PATIENCE: Duration = Duration::from_secs(10);

/// Runs unix socket operation `name`; `None` when there is no such operation.
pub fn run(name: &str, args: &[String]) -> Option<Outcome> {
    let arg = |index: usize| args.get(index).map_or("", String::as_str);
    Some(match name {
        // Connects (a datagram socket: connects and sends).
        "unix-connect" => connect_to(arg(0), kind(arg(1))),
        // Sends a datagram from an unbound socket.
        "unix-sendto" => send_datagram(arg(0)),
        // Asks the deputy at ADDR (of KIND) to copy READ to OUT; waits for its answer.
        "unix-ask" => ask(arg(0), kind(arg(1)), &request(arg(2), arg(3))),
        // Asks over the inherited, connected socket FD.
        "unix-ask-fd" => {
            // SAFETY: the test passes an open socket as this descriptor.
            let socket = unsafe { OwnedFd::from_raw_fd(parse_fd(arg(0))) };
            send(
                socket.as_raw_fd(),
                request(arg(1), arg(2)).as_bytes(),
                MsgFlags::empty(),
            )
            .and_then(|_| answer(&socket))
        }
        // Asks over a connected socket received from the server at SOCKET (SCM_RIGHTS). Only
        // the request's errno is an error: a failure to get the socket is reported as `ok`.
        "unix-recv-ask" => match crate::ops::recv_fd(arg(0)) {
            Err(errno) => Ok(format!("received nothing: errno {}", errno as i32)),
            Ok(fd) => {
                // SAFETY: the descriptor just arrived and nothing else owns it.
                let socket = unsafe { OwnedFd::from_raw_fd(fd) };
                send(
                    socket.as_raw_fd(),
                    request(arg(1), arg(2)).as_bytes(),
                    MsgFlags::empty(),
                )
                .and_then(|_| answer(&socket))
            }
        },
        "unix-socketpair" => pair_both_ways(kind(arg(0))),
        "unix-own-server" => own_server(arg(0), kind(arg(1))),
        _ => return None,
    })
}

fn parse_fd(text: &str) -> RawFd {
    text.parse().expect("a descriptor")
}

fn kind(text: &str) -> SockType {
    match text {
        "" | "stream" => SockType::Stream,
        "seqpacket" => SockType::SeqPacket,
        "dgram" => SockType::Datagram,
        other => panic!("unknown socket kind {other}: stream, seqpacket or dgram"),
    }
}

/// The address of a path, or of an abstract socket written `@name`.
fn address(text: &str) -> UnixAddr {
    match text.strip_prefix('@') {
        Some(name) => UnixAddr::new_abstract(name.as_bytes()),
        None => UnixAddr::new(text),
    }
    .unwrap_or_else(|error| panic!("bad unix address {text}: {error}"))
}

fn request(read: &str, out: &str) -> String {
    format!("{read} {out}")
}

fn unix_socket(kind: SockType) -> Result<OwnedFd, Errno> {
    nix::sys::socket::socket(AddressFamily::Unix, kind, SockFlag::SOCK_CLOEXEC, None)
}

fn patient(socket: &OwnedFd) -> Result<(), Errno> {
    let timeout = TimeVal::new(PATIENCE.as_secs().try_into().expect("seconds"), 0);
    setsockopt(socket, sockopt::ReceiveTimeout, &timeout)
}

fn connect_to(text: &str, kind: SockType) -> Outcome {
    let socket = unix_socket(kind)?;
    connect(socket.as_raw_fd(), &address(text))?;
    if kind == SockType::Datagram {
        send(socket.as_raw_fd(), b"kya", MsgFlags::empty())?;
        return Ok("connected and sent".to_owned());
    }
    Ok("connected".to_owned())
}

fn send_datagram(text: &str) -> Outcome {
    let socket = unix_socket(SockType::Datagram)?;
    let sent = sendto(
        socket.as_raw_fd(),
        b"kya",
        &address(text),
        MsgFlags::empty(),
    )?;
    Ok(format!("{sent} bytes"))
}

/// Sends `request` to the deputy at `text` and waits for its answer. A datagram goes from an
/// autobound address, which the deputy answers to.
fn ask(text: &str, kind: SockType, request: &str) -> Outcome {
    let socket = unix_socket(kind)?;
    if kind == SockType::Datagram {
        bind(socket.as_raw_fd(), &UnixAddr::new_unnamed())?;
        sendto(
            socket.as_raw_fd(),
            request.as_bytes(),
            &address(text),
            MsgFlags::empty(),
        )?;
    } else {
        connect(socket.as_raw_fd(), &address(text))?;
        send(socket.as_raw_fd(), request.as_bytes(), MsgFlags::empty())?;
    }
    answer(&socket)
}

/// The deputy's answer on `socket` (`EAGAIN` when none comes in time).
fn answer(socket: &OwnedFd) -> Outcome {
    patient(socket)?;
    let mut buffer = [0; 64];
    let length = recv(socket.as_raw_fd(), &mut buffer, MsgFlags::empty())?;
    Ok(format!(
        "answered {}",
        String::from_utf8_lossy(&buffer[..length])
    ))
}

/// A socket pair: each end sends to the other.
fn pair_both_ways(kind: SockType) -> Outcome {
    let (one, other) = socketpair(AddressFamily::Unix, kind, None, SockFlag::SOCK_CLOEXEC)?;
    for (from, to) in [(&one, &other), (&other, &one)] {
        send(from.as_raw_fd(), b"kya", MsgFlags::empty())?;
        let mut buffer = [0; 8];
        recv(to.as_raw_fd(), &mut buffer, MsgFlags::empty())?;
    }
    Ok("both ways".to_owned())
}

/// Serves at `text`, and a forked child of this process connects (or sends a datagram from an
/// autobound address) and says `ping`; the server answers `pong`. Reports the server's first
/// failed step, else the child's (its exit status is the errno), else `both ways`.
fn own_server(text: &str, kind: SockType) -> Outcome {
    let server = listening(text, kind)?;
    // SAFETY: the probe runs no other thread; the child only uses sockets and exits.
    match unsafe { fork() }? {
        ForkResult::Child => {
            let outcome = ask(text, kind, "ping");
            let code = match outcome {
                Ok(reply) if reply == "answered pong" => 0,
                Ok(_) => 255,
                Err(errno) => errno as i32,
            };
            std::process::exit(code)
        }
        ForkResult::Parent { child } => {
            let served = serve_one(&server, kind, |_| b"pong".to_vec());
            let status = waitpid(child, None)?;
            served?;
            match status {
                WaitStatus::Exited(_, 0) => Ok("both ways".to_owned()),
                WaitStatus::Exited(_, code) => Err(Errno::from_raw(code)),
                other => panic!("the client child ended with {other:?}"),
            }
        }
    }
}

/// A socket of `kind` bound at `text` (a stale socket file there is replaced; its directory
/// is created; everyone may connect), listening unless it is a datagram socket.
fn listening(text: &str, kind: SockType) -> Result<OwnedFd, Errno> {
    if !text.starts_with('@') {
        let path = std::path::Path::new(text);
        let _ = std::fs::remove_file(path);
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
    }
    let socket = unix_socket(kind)?;
    bind(socket.as_raw_fd(), &address(text))?;
    if !text.starts_with('@') {
        let _ = std::fs::set_permissions(text, std::fs::Permissions::from_mode(0o777));
    }
    if kind != SockType::Datagram {
        listen(&socket, Backlog::new(64).expect("a backlog"))?;
    }
    Ok(socket)
}

/// Takes one request on `server` (a connection's first message, or a datagram) and answers it
/// with what `act` returns. A connection that closes without a request is answered nothing.
fn serve_one(
    server: &OwnedFd,
    kind: SockType,
    act: impl Fn(&[u8]) -> Vec<u8>,
) -> Result<(), Errno> {
    let mut buffer = [0; 4096];
    if kind == SockType::Datagram {
        let (length, from) = recvfrom::<UnixAddr>(server.as_raw_fd(), &mut buffer)?;
        let reply = act(&buffer[..length]);
        if let Some(from) = from.filter(|from| from.path_len() > 0) {
            sendto(server.as_raw_fd(), &reply, &from, MsgFlags::empty())?;
        }
        return Ok(());
    }
    // SAFETY: accept returned a new descriptor that nothing else owns.
    let connection = unsafe { OwnedFd::from_raw_fd(accept(server.as_raw_fd())?) };
    patient(&connection)?;
    let length = recv(connection.as_raw_fd(), &mut buffer, MsgFlags::empty())?;
    if length > 0 {
        let reply = act(&buffer[..length]);
        send(connection.as_raw_fd(), &reply, MsgFlags::empty())?;
    }
    Ok(())
}

/// Starts the deputy: binds at `text` now, then serves requests one after the other on a
/// thread of its own, for as long as the process lives.
pub fn deputy(text: &str, kind: &str) {
    let kind = self::kind(kind);
    let server = listening(text, kind).unwrap_or_else(|errno| panic!("serve at {text}: {errno}"));
    std::thread::spawn(move || {
        loop {
            // A client that gives up or is refused half way costs one request, not the server.
            let _ = serve_one(&server, kind, act);
        }
    });
}

/// What a deputy does for a request `READ OUT`: copies the file, or writes why it could not.
fn act(request: &[u8]) -> Vec<u8> {
    let request = String::from_utf8_lossy(request);
    let Some((read, out)) = request.trim().split_once(' ') else {
        return b"bad request".to_vec();
    };
    let contents = std::fs::read(read).unwrap_or_else(|error| format!("{error}").into_bytes());
    match std::fs::write(out, contents) {
        Ok(()) => b"done".to_vec(),
        Err(_) => b"failed".to_vec(),
    }
}
