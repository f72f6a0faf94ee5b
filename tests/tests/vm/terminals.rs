//! No agent may push input into a terminal (`TIOCSTI`, and `TIOCLINUX`, whose paste does the
//! same on a console): the terminal's reader, a human's shell perhaps, would run it after the
//! agent exits, untagged. The reader here is the test itself, untagged, reading the slave side
//! of a pseudo-terminal as a shell would. Agents (root `ops`, and `coder` as uid 1001 from its
//! own controlling terminal) get EPERM with an event and the reader gets nothing; untagged
//! processes push as before.
use std::{
    ffi::CStr,
    fs::{self, File},
    io::{Read as _, Write as _},
    net::TcpStream,
    os::{
        fd::{AsRawFd as _, FromRawFd as _},
        unix::fs::OpenOptionsExt as _,
    },
    path::Path,
    time::Duration,
};

use kya_tests::{
    CODER_UID, Daemon, EPERM, Fixture, OpResult, events, eventually, op, op_as_uid, op_exe,
};

/// A uid that no agent's rule names: a human's.
const HUMAN_UID: u32 = 1002;
/// Pushed by an untagged process after each attempt: everything the reader gets before it
/// came from the attempt.
const MARKER: &str = "#";
/// `TIOCL_GETFGCONSOLE`: a harmless `TIOCLINUX` subcode (which console is in front).
const TIOCL_GETFGCONSOLE: &str = "12";

/// A pseudo-terminal whose slave side the test reads, as the shell on it would.
struct Terminal {
    _master: File,
    reader: File,
    path: String,
}

impl Terminal {
    /// A new pseudo-terminal whose slave belongs to `owner` (as a user's login terminal does),
    /// in raw mode so that every byte pushed is read at once.
    fn new(owner: u32) -> Self {
        // SAFETY: plain libc calls on the descriptor they return, checked as they go; the
        // name is copied out before anything else can call ptsname.
        let (master, path) = unsafe {
            let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
            assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
            assert_eq!(libc::grantpt(fd), 0, "grantpt");
            assert_eq!(libc::unlockpt(fd), 0, "unlockpt");
            let name = libc::ptsname(fd);
            assert!(!name.is_null(), "ptsname");
            let path = CStr::from_ptr(name).to_str().expect("utf-8").to_owned();
            (File::from_raw_fd(fd), path)
        };
        let reader = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(&path)
            .expect("open the slave side");
        // SAFETY: termios is plain data, filled by tcgetattr before it is used.
        unsafe {
            let mut termios = std::mem::zeroed::<libc::termios>();
            assert_eq!(libc::tcgetattr(reader.as_raw_fd(), &raw mut termios), 0);
            libc::cfmakeraw(&raw mut termios);
            assert_eq!(
                libc::tcsetattr(reader.as_raw_fd(), libc::TCSANOW, &raw const termios),
                0
            );
        }
        std::os::unix::fs::chown(&path, Some(owner), Some(owner)).expect("chown the terminal");
        Self {
            _master: master,
            reader,
            path,
        }
    }

    /// The device node's name, as events show it (`3` for `/dev/pts/3`).
    fn name(&self) -> &str {
        self.path.rsplit('/').next().expect("a name")
    }

    /// Pushes [`MARKER`] as untagged root, then returns what the reader got before it.
    fn arrived(&mut self) -> String {
        assert_eq!(
            op(None, &["tiocsti", &self.path, MARKER]),
            Ok("1 bytes".to_owned()),
            "root outside agents pushing the marker"
        );
        let mut got = Vec::new();
        let seen = eventually(Duration::from_secs(10), || {
            let mut buffer = [0_u8; 256];
            if let Ok(read) = self.reader.read(&mut buffer) {
                got.extend_from_slice(&buffer[..read]);
            }
            got.ends_with(MARKER.as_bytes())
        });
        let got = String::from_utf8_lossy(&got).into_owned();
        assert!(seen, "the marker never reached the reader (got {got:?})");
        got.strip_suffix(MARKER).expect("the marker").to_owned()
    }
}

/// Sets `dev.tty.legacy_tiocsti` to 1 while it lives, where the kernel has it (6.2 and later;
/// Debian's 6.12 is built with it 0, which lets only `CAP_SYS_ADMIN` push at all): a non-root
/// process then may push into its controlling terminal, as every one could before.
struct LegacyTiocsti(Option<String>);

const LEGACY_TIOCSTI: &str = "/proc/sys/dev/tty/legacy_tiocsti";

impl LegacyTiocsti {
    fn on() -> Self {
        let old = fs::read_to_string(LEGACY_TIOCSTI).ok();
        if old.is_some() {
            fs::write(LEGACY_TIOCSTI, "1").expect("set dev.tty.legacy_tiocsti");
        }
        Self(old)
    }
}

impl Drop for LegacyTiocsti {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = fs::write(LEGACY_TIOCSTI, old.trim());
        }
    }
}

/// `kya_denied_total{agent=AGENT,kind="terminal"}` from the daemon's metrics endpoint.
fn denied_total(agent: &str) -> f64 {
    let mut stream = TcpStream::connect("127.0.0.1:9464").expect("metrics endpoint");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: kya\r\n\r\n")
        .expect("ask for metrics");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("metrics");
    let series = format!(r#"kya_denied_total{{agent="{agent}",kind="terminal"}} "#);
    response
        .lines()
        .find_map(|line| line.strip_prefix(series.as_str())?.parse().ok())
        .unwrap_or_else(|| panic!("no {series}in the metrics"))
}

/// Waits for a `terminal` event from `agent` about the terminal `name` whose reason starts
/// with `why`.
#[track_caller]
fn assert_event(agent: &str, name: &str, why: &str) {
    let seen = eventually(Duration::from_secs(10), || {
        events().iter().any(|event| {
            event["kind"] == "terminal"
                && event["agent"] == agent
                && event["name"] == name
                && event["why"]
                    .as_str()
                    .is_some_and(|text| text.starts_with(why))
        })
    });
    assert!(
        seen,
        "no terminal event from {agent} on {name} starting {why:?}; events: {:?}",
        events()
    );
}

#[track_caller]
fn assert_refused(result: &OpResult, what: &str) {
    assert_eq!(result, &Err(EPERM), "{what}: an agent must get EPERM");
}

#[test]
fn a_root_agent_cannot_push_keystrokes_into_a_terminal() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    let mut terminal = Terminal::new(0);
    let before = denied_total("ops");

    assert_refused(
        &op_exe(&fixture.ops_exe, &["tiocsti", &terminal.path, "id\n"]),
        "TIOCSTI by root agent ops",
    );
    assert_eq!(
        terminal.arrived(),
        "",
        "the agent's keystrokes reached the reader"
    );

    assert_eq!(
        op(None, &["tiocsti", &terminal.path, "ls\n"]),
        Ok("3 bytes".to_owned()),
        "TIOCSTI by root outside agents"
    );
    assert_eq!(terminal.arrived(), "ls\n", "root's keystrokes must arrive");

    assert_event("ops", terminal.name(), "TIOCSTI (pushing keystrokes");
    assert!(
        eventually(Duration::from_secs(10), || denied_total("ops")
            >= before + 1.0),
        "kya_denied_total for ops's terminal refusals stayed at {before}"
    );
}

#[test]
fn a_non_root_agent_cannot_push_keystrokes_into_its_own_terminal() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    let _legacy = LegacyTiocsti::on();
    // A human's program pushes into the terminal it runs on: the kernel allows that.
    let mut human = Terminal::new(HUMAN_UID);
    assert_eq!(
        op_as_uid(
            HUMAN_UID,
            "/home/alice",
            &["tiocsti-ctty", &human.path, "ls\n"]
        ),
        Ok("3 bytes".to_owned()),
        "TIOCSTI by uid {HUMAN_UID} (no agent) into its controlling terminal"
    );
    assert_eq!(human.arrived(), "ls\n");
    // An agent run from a human's shell shares its terminal: the same is refused.
    let mut coder = Terminal::new(CODER_UID);
    assert_refused(
        &op_as_uid(
            CODER_UID,
            "/home/coder",
            &["tiocsti-ctty", &coder.path, "id\n"],
        ),
        "TIOCSTI by coder (uid 1001) into its controlling terminal",
    );
    assert_eq!(
        coder.arrived(),
        "",
        "the agent's keystrokes reached the reader"
    );
    assert_event("coder", coder.name(), "TIOCSTI");
}

#[test]
fn a_32_bit_ioctl_is_refused_alike() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    let mut terminal = Terminal::new(0);
    assert_refused(
        &op_exe(
            &fixture.ops_exe,
            &["tiocsti-compat", &terminal.path, "id\n"],
        ),
        "TIOCSTI through the 32-bit ioctl by root agent ops",
    );
    assert_eq!(
        terminal.arrived(),
        "",
        "the agent's keystrokes reached the reader"
    );
    assert_eq!(
        op(None, &["tiocsti-compat", &terminal.path, "ls\n"]),
        Ok("3 bytes".to_owned()),
        "TIOCSTI through the 32-bit ioctl by root outside agents"
    );
    assert_eq!(terminal.arrived(), "ls\n");
    assert_event("ops", terminal.name(), "TIOCSTI");
}

#[test]
fn tioclinux_is_refused_to_agents() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    // On a pseudo-terminal the kernel has no TIOCLINUX: its own answer is not kya's EPERM.
    let terminal = Terminal::new(0);
    let untagged = op(None, &["tioclinux", &terminal.path, TIOCL_GETFGCONSOLE]);
    assert!(
        matches!(untagged, Err(errno) if errno != EPERM),
        "TIOCLINUX on a pseudo-terminal outside agents must fail with the kernel's own \
         error (ENOTTY), got {untagged:?}"
    );
    assert_refused(
        &op_exe(
            &fixture.ops_exe,
            &["tioclinux", &terminal.path, TIOCL_GETFGCONSOLE],
        ),
        "TIOCLINUX on a pseudo-terminal by root agent ops",
    );
    // On a virtual console, where it works.
    let console = "/dev/tty1";
    assert!(
        Path::new(console).exists(),
        "{console} is missing (the test kernels are built with CONFIG_VT)"
    );
    let untagged = op(None, &["tioclinux", console, TIOCL_GETFGCONSOLE]);
    assert!(
        untagged.is_ok(),
        "TIOCLINUX (which console is in front) on {console} outside agents: {untagged:?}"
    );
    assert_refused(
        &op_exe(
            &fixture.ops_exe,
            &["tioclinux", console, TIOCL_GETFGCONSOLE],
        ),
        "TIOCLINUX on a virtual console by root agent ops",
    );
    assert_event("ops", "tty1", "TIOCLINUX");
}
