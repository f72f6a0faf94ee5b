//! One-shot network operations for the egress tests: each reports `result ok ...` or
//! `result errno N` like the file operations.
use std::{
    io::Write as _,
    net::{IpAddr, SocketAddr, TcpStream, UdpSocket},
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
        unix::net::{UnixDatagram, UnixStream},
    },
    time::Duration,
};

use nix::errno::Errno;

type Outcome = Result<String, Errno>;

/// Runs network operation `name`; `None` when there is no such operation.
pub fn run(name: &str, args: &[String]) -> Option<Outcome> {
    let arg = |index: usize| args.get(index).map_or("", String::as_str);
    let peer = || -> SocketAddr {
        let ip: IpAddr = arg(0).parse().expect("an IP address");
        SocketAddr::new(ip, arg(1).parse().expect("a port"))
    };
    Some(match name {
        "tcp-connect" => tcp_connect(peer()),
        "tcp-connect-send" => tcp_connect_send(peer()),
        "race-connect" => Ok(race_connect(
            peer(),
            arg(2).parse().expect("a thread count"),
        )),
        "udp-connect-send" => udp_connect_send(peer()),
        "udp-sendto" => udp_sendto(peer()),
        "udp-sendmmsg" => udp_sendmmsg(peer()),
        "tcp-fastopen" => tcp_fastopen(peer()),
        "uring-connect" => uring_connect(peer()),
        "send-fd" => send_fd(arg(0).parse().expect("a descriptor")),
        "tcp-serve-once" => tcp_serve_once(peer()),
        "unix-connect" => unix_connect(arg(0)),
        "unix-sendto" => unix_sendto(arg(0)),
        "raw-socket" => raw_socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP),
        "packet-socket" => raw_socket(libc::AF_PACKET, libc::SOCK_RAW, 0),
        _ => return None,
    })
}

fn io_errno(error: &std::io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(0))
}

fn tcp_connect(peer: SocketAddr) -> Outcome {
    let stream = TcpStream::connect_timeout(&peer, Duration::from_secs(5))
        .map_err(|error| io_errno(&error))?;
    Ok(format!(
        "connected from {}",
        stream.local_addr().map_err(|e| io_errno(&e))?
    ))
}

/// Connects and then sends on the connection: a grant must cover both.
fn tcp_connect_send(peer: SocketAddr) -> Outcome {
    let mut stream = TcpStream::connect_timeout(&peer, Duration::from_secs(5))
        .map_err(|error| io_errno(&error))?;
    stream.write_all(b"kya").map_err(|error| io_errno(&error))?;
    Ok("connected and sent 3 bytes".to_owned())
}

/// Connects to `peer` from `threads` threads released at the same moment; reports how many
/// connected (`ok N of M`).
fn race_connect(peer: SocketAddr, threads: usize) -> String {
    let start = std::sync::Arc::new(std::sync::Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let start = std::sync::Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                TcpStream::connect_timeout(&peer, Duration::from_secs(5)).is_ok()
            })
        })
        .collect();
    let connected = handles
        .into_iter()
        .map(|handle| handle.join().expect("connect thread"))
        .filter(|ok| *ok)
        .count();
    format!("{connected} of {threads}")
}

fn unbound_udp(peer: SocketAddr) -> Result<UdpSocket, Errno> {
    let any: SocketAddr = if peer.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    UdpSocket::bind(any).map_err(|error| io_errno(&error))
}

fn udp_connect_send(peer: SocketAddr) -> Outcome {
    let socket = unbound_udp(peer)?;
    socket.connect(peer).map_err(|error| io_errno(&error))?;
    let sent = socket.send(b"kya").map_err(|error| io_errno(&error))?;
    Ok(format!("{sent} bytes"))
}

fn udp_sendto(peer: SocketAddr) -> Outcome {
    let socket = unbound_udp(peer)?;
    let sent = socket
        .send_to(b"kya", peer)
        .map_err(|error| io_errno(&error))?;
    Ok(format!("{sent} bytes"))
}

fn udp_sendmmsg(peer: SocketAddr) -> Outcome {
    use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};
    let socket = unbound_udp(peer)?;
    let address = SockaddrStorage::from(peer);
    let payloads = [
        [std::io::IoSlice::new(b"one")],
        [std::io::IoSlice::new(b"two")],
    ];
    let addresses = [Some(address), Some(address)];
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(2, None);
    let sent = sendmmsg(
        socket.as_raw_fd(),
        &mut headers,
        &payloads,
        addresses,
        [],
        MsgFlags::empty(),
    )?;
    Ok(format!("{} messages", sent.count()))
}

/// `sendto` with `MSG_FASTOPEN` on an unconnected TCP socket: the connect and the first data
/// in one call, which never passes `connect`.
fn tcp_fastopen(peer: SocketAddr) -> Outcome {
    let family = if peer.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket syscalls on a descriptor this function owns.
    unsafe {
        let fd = Errno::result(libc::socket(family, libc::SOCK_STREAM, 0))?;
        let socket = OwnedFd::from_raw_fd(fd);
        let address = nix::sys::socket::SockaddrStorage::from(peer);
        let sent = Errno::result(libc::sendto(
            socket.as_raw_fd(),
            b"kya".as_ptr().cast(),
            3,
            libc::MSG_FASTOPEN,
            nix::sys::socket::SockaddrLike::as_ptr(&address),
            nix::sys::socket::SockaddrLike::len(&address),
        ))?;
        Ok(format!("{sent} bytes"))
    }
}

fn uring_connect(peer: SocketAddr) -> Outcome {
    let family = if peer.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: a fresh socket this function owns.
    let socket =
        unsafe { OwnedFd::from_raw_fd(Errno::result(libc::socket(family, libc::SOCK_STREAM, 0))?) };
    let address = nix::sys::socket::SockaddrStorage::from(peer);
    let entry = io_uring::opcode::Connect::new(
        io_uring::types::Fd(socket.as_raw_fd()),
        nix::sys::socket::SockaddrLike::as_ptr(&address),
        nix::sys::socket::SockaddrLike::len(&address),
    )
    .build();
    let mut ring = io_uring::IoUring::new(2).map_err(|error| io_errno(&error))?;
    // SAFETY: the address outlives the submission (we wait for it).
    unsafe { ring.submission().push(&entry) }.map_err(|_| Errno::EBUSY)?;
    ring.submit_and_wait(1).map_err(|error| io_errno(&error))?;
    let result = ring.completion().next().ok_or(Errno::EIO)?.result();
    if result < 0 {
        return Err(Errno::from_raw(-result));
    }
    Ok("connected".to_owned())
}

/// Listens on `address`, prints `listening`, accepts one connection and answers on it: a
/// server's replies are not outbound traffic, whoever the client is.
fn tcp_serve_once(address: SocketAddr) -> Outcome {
    let listener = std::net::TcpListener::bind(address).map_err(|error| io_errno(&error))?;
    println!("listening");
    std::io::stdout()
        .flush()
        .map_err(|error| io_errno(&error))?;
    let (mut stream, client) = listener.accept().map_err(|error| io_errno(&error))?;
    stream
        .write_all(b"hello")
        .map_err(|error| io_errno(&error))?;
    Ok(format!("answered {client}"))
}

/// Writes on a socket this process did not create (inherited as a descriptor).
fn send_fd(fd: RawFd) -> Outcome {
    // SAFETY: the test passes an open socket as this descriptor.
    let mut socket = unsafe { std::fs::File::from_raw_fd(fd) };
    let sent = socket.write(b"kya").map_err(|error| io_errno(&error))?;
    Ok(format!("{sent} bytes"))
}

fn unix_connect(path: &str) -> Outcome {
    UnixStream::connect(path).map_err(|error| io_errno(&error))?;
    Ok("connected".to_owned())
}

fn unix_sendto(path: &str) -> Outcome {
    let socket = UnixDatagram::unbound().map_err(|error| io_errno(&error))?;
    let sent = socket
        .send_to(b"kya", path)
        .map_err(|error| io_errno(&error))?;
    Ok(format!("{sent} bytes"))
}

fn raw_socket(family: i32, kind: i32, protocol: i32) -> Outcome {
    // SAFETY: a plain socket syscall; the descriptor is closed on return.
    let fd = Errno::result(unsafe { libc::socket(family, kind, protocol) })?;
    // SAFETY: the kernel just returned it.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok("opened".to_owned())
}
