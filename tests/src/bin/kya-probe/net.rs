//! One-shot network operations for the egress tests: each reports `result ok ...` or
//! `result errno N` like the file operations.
use std::{
    io::Write as _,
    net::{IpAddr, SocketAddr, TcpStream, UdpSocket},
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
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
        "sendto-fd" => sendto_fd(
            arg(0).parse().expect("a descriptor"),
            arg(1),
            &named(arg(2), arg(3)),
        ),
        "sendto-family" => sendto_family(arg(0), arg(1), &named(arg(2), arg(3))),
        "sendfile-into-fd" => into_socket_fd(arg(0).parse().expect("a descriptor"), Feed::Sendfile),
        "splice-into-fd" => into_socket_fd(arg(0).parse().expect("a descriptor"), Feed::Splice),
        "vmsplice-into-fd" => into_socket_fd(arg(0).parse().expect("a descriptor"), Feed::Vmsplice),
        "send-fds" => Ok(send_fds(
            arg(0).parse().expect("a first descriptor"),
            arg(1).parse().expect("a count"),
        )),
        "tcp-send-later" => tcp_send_later(
            peer(),
            Duration::from_secs(arg(2).parse().expect("seconds")),
            &named(arg(3), arg(4)),
        ),
        "tcp-serve" => tcp_serve(arg(0).parse().expect("a count"), named(arg(1), arg(2))),
        "socket" => raw_socket(
            arg(0).parse().expect("a family"),
            arg(1).parse().expect("a type"),
            arg(2).parse().expect("a protocol"),
        ),
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

fn raw_socket(family: i32, kind: i32, protocol: i32) -> Outcome {
    // SAFETY: a plain socket syscall; the descriptor is closed on return.
    let fd = Errno::result(unsafe { libc::socket(family, kind, protocol) })?;
    // SAFETY: the kernel just returned it.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok("opened".to_owned())
}

fn named(ip: &str, port: &str) -> SocketAddr {
    SocketAddr::new(
        ip.parse().expect("an IP address"),
        port.parse().expect("a port"),
    )
}

/// A `sockaddr` for `peer` whose family field says `family` (`unspec`, `inet`, `inet6` or a
/// number), laid out as `sockaddr_in` for an IPv4 address and `sockaddr_in6` for IPv6: what
/// a program that fills in the address but not the family sends.
fn sockaddr(family: &str, peer: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    let family: libc::sa_family_t = match family {
        "unspec" => 0,
        "inet" => 2,
        "inet6" => 10,
        number => number.parse().expect("a family"),
    };
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let length = match peer {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            let sin = unsafe { &mut *std::ptr::from_mut(&mut storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = family;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 =
                unsafe { &mut *std::ptr::from_mut(&mut storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = family;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_addr.s6_addr = v6.ip().octets();
            size_of::<libc::sockaddr_in6>()
        }
    };
    (
        storage,
        libc::socklen_t::try_from(length).expect("a small length"),
    )
}

/// `sendto(fd, "kya", name)` with a name of family `family` for `peer`.
fn sendto_fd(fd: RawFd, family: &str, peer: &SocketAddr) -> Outcome {
    let (storage, length) = sockaddr(family, peer);
    // SAFETY: a plain syscall on a descriptor the test passed, with a valid buffer and name.
    let sent = Errno::result(unsafe {
        libc::sendto(
            fd,
            b"kya".as_ptr().cast(),
            3,
            0,
            std::ptr::from_ref(&storage).cast(),
            length,
        )
    })?;
    Ok(format!("{sent} bytes"))
}

/// A new socket of `kind` (`udp4`, `udp6`, `ping4`, `ping6`), then [`sendto_fd`] on it.
fn sendto_family(kind: &str, family: &str, peer: &SocketAddr) -> Outcome {
    let (domain, protocol) = match kind {
        "udp4" => (libc::AF_INET, 0),
        "udp6" => (libc::AF_INET6, 0),
        "ping4" => (libc::AF_INET, libc::IPPROTO_ICMP),
        "ping6" => (libc::AF_INET6, libc::IPPROTO_ICMPV6),
        other => panic!("unknown socket kind {other}"),
    };
    // SAFETY: a plain socket syscall; the descriptor is owned below.
    let socket = unsafe {
        OwnedFd::from_raw_fd(Errno::result(libc::socket(
            domain,
            libc::SOCK_DGRAM,
            protocol,
        ))?)
    };
    if kind.starts_with("ping") {
        // An ICMP echo request with id 0: a ping socket sends only those.
        let mut echo = [8u8, 0, 0, 0, 0, 0, 0, 1];
        if domain == libc::AF_INET6 {
            echo[0] = 128;
        }
        let (storage, length) = sockaddr(family, peer);
        // SAFETY: as in sendto_fd.
        let sent = Errno::result(unsafe {
            libc::sendto(
                socket.as_raw_fd(),
                echo.as_ptr().cast(),
                echo.len(),
                0,
                std::ptr::from_ref(&storage).cast(),
                length,
            )
        })?;
        return Ok(format!("{sent} bytes"));
    }
    sendto_fd(socket.as_raw_fd(), family, peer)
}

/// How [`into_socket_fd`] feeds a socket without a send call of its own.
#[derive(Clone, Copy)]
pub enum Feed {
    Sendfile,
    Splice,
    Vmsplice,
}

/// Moves 3 bytes into the socket at `fd` by `sendfile` from a file, `splice` from a pipe the
/// bytes were written to, or `vmsplice` of user memory into a pipe and `splice` from it.
fn into_socket_fd(fd: RawFd, feed: Feed) -> Outcome {
    let moved = match feed {
        Feed::Sendfile => {
            let path = format!("/tmp/kya-probe-sendfile-{}", std::process::id());
            std::fs::write(&path, b"kya").map_err(|error| io_errno(&error))?;
            let file = std::fs::File::open(&path).map_err(|error| io_errno(&error))?;
            let _ = std::fs::remove_file(&path);
            // SAFETY: plain syscall on descriptors that stay open for the call.
            Errno::result(unsafe { libc::sendfile(fd, file.as_raw_fd(), std::ptr::null_mut(), 3) })?
        }
        Feed::Splice | Feed::Vmsplice => {
            let (read_end, write_end) = nix::unistd::pipe()?;
            if matches!(feed, Feed::Splice) {
                nix::unistd::write(&write_end, b"kya")?;
            } else {
                let bytes = libc::iovec {
                    iov_base: b"kya".as_ptr().cast_mut().cast(),
                    iov_len: 3,
                };
                // SAFETY: the iovec points at 3 static bytes; vmsplice only reads them.
                Errno::result(unsafe {
                    libc::vmsplice(write_end.as_raw_fd(), &raw const bytes, 1, 0)
                })?;
            }
            // SAFETY: plain syscall on descriptors that stay open for the call.
            Errno::result(unsafe {
                libc::splice(
                    read_end.as_raw_fd(),
                    std::ptr::null_mut(),
                    fd,
                    std::ptr::null_mut(),
                    3,
                    0,
                )
            })?
        }
    };
    Ok(format!("{moved} bytes"))
}

/// Writes on each of the `count` inherited sockets from descriptor `first` on; reports how
/// many took the bytes and the errno of each that refused (`sent K of N errnos [..]`).
fn send_fds(first: RawFd, count: RawFd) -> String {
    let mut sent = 0;
    let mut errnos = Vec::new();
    for fd in first..first + count {
        // SAFETY: the test passes open sockets as these descriptors.
        let result = Errno::result(unsafe { libc::write(fd, b"kya".as_ptr().cast(), 3) });
        match result {
            Ok(_) => sent += 1,
            Err(errno) => errnos.push(errno as i32),
        }
    }
    format!("sent {sent} of {count} errnos {errnos:?}")
}

/// Listens on `address`, prints `listening`, then accepts `count` connections one after the
/// other, answering and closing each.
fn tcp_serve(count: usize, address: SocketAddr) -> Outcome {
    let listener = std::net::TcpListener::bind(address).map_err(|error| io_errno(&error))?;
    println!("listening");
    std::io::stdout()
        .flush()
        .map_err(|error| io_errno(&error))?;
    for _ in 0..count {
        let (mut stream, _) = listener.accept().map_err(|error| io_errno(&error))?;
        stream
            .write_all(b"hello")
            .map_err(|error| io_errno(&error))?;
    }
    Ok(format!("answered {count}"))
}

/// Connects to `peer` and sends on the connection, then after `wait` sends again with a
/// `sendto` that names `name`: reports the later send's outcome (`ok` with `connect failed`
/// or `first failed` if the connection or its first send already failed).
fn tcp_send_later(peer: SocketAddr, wait: Duration, name: &SocketAddr) -> Outcome {
    let mut stream = match TcpStream::connect_timeout(&peer, Duration::from_secs(5)) {
        Ok(stream) => stream,
        Err(error) => return Ok(format!("connect failed errno {}", io_errno(&error) as i32)),
    };
    if let Err(error) = stream.write_all(b"kya") {
        return Ok(format!("first failed errno {}", io_errno(&error) as i32));
    }
    std::thread::sleep(wait);
    sendto_fd(stream.as_raw_fd(), "inet", name)
}
