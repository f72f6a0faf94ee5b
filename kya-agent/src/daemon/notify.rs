//! Readiness and stopping notifications to systemd (`Type=notify`, `sd_notify(3)`). Outside
//! systemd `NOTIFY_SOCKET` is unset and nothing is sent.
use sd_notify::NotifyState;

/// Tells systemd that enforcement is active: the programs are attached, the config is applied
/// and the control socket is bound. `MAINPID` names this process, which systemd may not know
/// when the service was started through a wrapper. Does nothing when not started by systemd.
pub fn ready() {
    notify_service_manager(&[
        NotifyState::Ready,
        NotifyState::Status("enforcing"),
        NotifyState::MainPid(std::process::id()),
    ]);
}

/// Tells systemd that the daemon is stopping. Does nothing when not started by systemd.
pub fn stopping() {
    notify_service_manager(&[NotifyState::Stopping]);
}

/// A failure is logged, never fatal: the daemon enforces whether or not systemd hears about it
/// (systemd then times the start out).
fn notify_service_manager(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(
            error = %error,
            socket = %std::env::var_os("NOTIFY_SOCKET").unwrap_or_default().to_string_lossy(),
            "cannot notify systemd"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::{os::unix::net::UnixDatagram, time::Duration};

    use super::*;

    /// The one test that sets `NOTIFY_SOCKET`: no other test reads it.
    #[test]
    fn ready_and_stopping_reach_the_socket_systemd_names() {
        let dir = std::env::temp_dir().join(format!("kya-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let systemd = UnixDatagram::bind(&path).unwrap();
        systemd
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // SAFETY: no other test of this binary reads or writes the environment variable.
        unsafe { std::env::set_var("NOTIFY_SOCKET", &path) };
        let receive = || {
            let mut buffer = [0; 256];
            let length = systemd.recv(&mut buffer).expect("one datagram arrives");
            String::from_utf8(buffer[..length].to_vec()).unwrap()
        };
        ready();
        assert_eq!(
            receive(),
            format!(
                "READY=1\nSTATUS=enforcing\nMAINPID={}\n",
                std::process::id()
            )
        );
        stopping();
        assert_eq!(receive(), "STOPPING=1\n");
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
