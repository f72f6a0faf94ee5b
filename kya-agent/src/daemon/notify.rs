//! Readiness and stopping notifications to systemd (`Type=notify`), the protocol of
//! `sd_notify(3)` written out by hand: one datagram of `KEY=VALUE` lines to the unix socket
//! named by `NOTIFY_SOCKET`. Outside systemd the variable is unset and nothing is sent.
use std::{
    ffi::OsStr,
    io,
    os::{
        linux::net::SocketAddrExt as _,
        unix::{
            ffi::OsStrExt as _,
            net::{SocketAddr, UnixDatagram},
        },
    },
};

/// The environment variable through which systemd names its notification socket.
const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Sent when the daemon begins to shut down.
pub const STOPPING: &str = "STOPPING=1";

/// Sent once enforcement is active: the programs are attached, the config is applied and the
/// control socket is bound. `MAINPID` names this process, which systemd may not know when the
/// service was started through a wrapper.
#[must_use]
pub fn ready_message(pid: u32) -> String {
    format!("READY=1\nSTATUS=enforcing\nMAINPID={pid}")
}

/// Tells systemd that enforcement is active. Does nothing when not started by systemd.
pub fn ready() {
    notify_service_manager(&ready_message(std::process::id()));
}

/// Tells systemd that the daemon is stopping. Does nothing when not started by systemd.
pub fn stopping() {
    notify_service_manager(STOPPING);
}

/// Sends `message` to the socket in `NOTIFY_SOCKET`. A failure is logged, never fatal: the
/// daemon enforces whether or not systemd hears about it (systemd then times the start out).
fn notify_service_manager(message: &str) {
    let socket = std::env::var_os(NOTIFY_SOCKET);
    if let Err(error) = notify(socket.as_deref(), message) {
        tracing::warn!(
            error = %error,
            socket = %socket.as_deref().unwrap_or_default().to_string_lossy(),
            "cannot notify systemd"
        );
    }
}

/// Sends `message` as one datagram to the notification socket `socket_path`: a filesystem path
/// (`/run/systemd/notify`) or, with a leading `@`, an abstract socket name (the `@` stands for
/// the NUL byte that begins it). `None` means no service manager asked and sends nothing.
pub fn notify(socket_path: Option<&OsStr>, message: &str) -> io::Result<()> {
    let Some(socket_path) = socket_path else {
        return Ok(());
    };
    let address = address(socket_path)?;
    let socket = UnixDatagram::unbound()?;
    let sent = socket.send_to_addr(message.as_bytes(), &address)?;
    if sent != message.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("sent {sent} of {} bytes", message.len()),
        ));
    }
    Ok(())
}

fn address(socket_path: &OsStr) -> io::Result<SocketAddr> {
    match socket_path.as_bytes() {
        [b'@', name @ ..] => SocketAddr::from_abstract_name(name),
        [b'/', ..] => SocketAddr::from_pathname(socket_path),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "expected an absolute path or an @abstract socket name",
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::{fs, path::PathBuf, time::Duration};

    use super::*;

    fn receive(socket: &UnixDatagram) -> String {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buffer = [0; 256];
        let length = socket
            .recv(&mut buffer)
            .expect("the notification should arrive as one datagram");
        String::from_utf8(buffer[..length].to_vec()).unwrap()
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kya-notify-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_ready_message_says_ready_enforcing_and_the_main_pid() {
        assert_eq!(
            ready_message(4242),
            "READY=1\nSTATUS=enforcing\nMAINPID=4242"
        );
    }

    #[test]
    fn sends_one_datagram_to_a_socket_path() {
        let dir = temp_dir("path");
        let path = dir.join("notify");
        let systemd = UnixDatagram::bind(&path).unwrap();
        notify(Some(path.as_os_str()), &ready_message(7)).unwrap();
        assert_eq!(receive(&systemd), "READY=1\nSTATUS=enforcing\nMAINPID=7");
        notify(Some(path.as_os_str()), STOPPING).unwrap();
        assert_eq!(receive(&systemd), "STOPPING=1");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_leading_at_sign_names_an_abstract_socket() {
        let name = format!("kya-notify-test-{}", std::process::id());
        let systemd =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        notify(Some(OsStr::new(&format!("@{name}"))), STOPPING).unwrap();
        assert_eq!(receive(&systemd), "STOPPING=1");
        // The abstract name is not a file: no `@...` path appeared in the working directory.
        assert!(!std::path::Path::new(&format!("@{name}")).exists());
    }

    #[test]
    fn without_a_socket_nothing_is_sent_and_nothing_fails() {
        notify(None, STOPPING).unwrap();
    }

    #[test]
    fn a_relative_socket_path_or_a_missing_socket_is_an_error() {
        assert_eq!(
            notify(Some(OsStr::new("notify")), STOPPING)
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidInput
        );
        let dir = temp_dir("missing");
        assert!(notify(Some(dir.join("absent").as_os_str()), STOPPING).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
