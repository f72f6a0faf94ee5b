//! A program run at a pseudo-terminal and driven as a human would: read what it shows, type
//! lines. Standard input, output and error are the terminal, so the program sees a tty.
use std::{
    fs::File,
    io::{Read as _, Write as _},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, PoisonError},
    thread,
    time::{Duration, Instant},
};

/// A running program at a terminal of its own. Dropping it kills the program.
pub struct Terminal {
    master: File,
    child: Child,
    /// Everything the program wrote, as the terminal shows it (`\r\n` line ends, typed lines
    /// echoed).
    output: Arc<Mutex<String>>,
    /// How much of `output` earlier waits consumed.
    seen: usize,
}

impl Terminal {
    /// Runs `command` with a new pseudo-terminal as its standard input, output and error.
    #[must_use]
    pub fn spawn(mut command: Command) -> Self {
        let pty = nix::pty::openpty(
            None::<&nix::pty::Winsize>,
            None::<&nix::sys::termios::Termios>,
        )
        .expect("openpty");
        let side = |what| Stdio::from(pty.slave.try_clone().expect(what));
        command
            .stdin(side("terminal for stdin"))
            .stdout(side("terminal for stdout"))
            .stderr(side("terminal for stderr"));
        let child = command.spawn().expect("start the program at the terminal");
        // Only the program holds the terminal's side now: its exit ends our reads.
        drop(command);
        drop(pty.slave);
        let master = File::from(pty.master);
        let output = Arc::new(Mutex::new(String::new()));
        let mut reader = master.try_clone().expect("terminal reader");
        let shown = Arc::clone(&output);
        thread::spawn(move || {
            let mut buffer = [0_u8; 4096];
            // EIO once the program closed the terminal.
            while let Ok(read @ 1..) = reader.read(&mut buffer) {
                shown
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push_str(&String::from_utf8_lossy(&buffer[..read]));
            }
        });
        Self {
            master,
            child,
            output,
            seen: 0,
        }
    }

    /// Waits until the program shows `text` after what earlier waits consumed, and returns the
    /// output up to and including it (consumed).
    pub fn expect(&mut self, text: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let output = self.output.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(at) = output[self.seen..].find(text) {
                    let end = self.seen + at + text.len();
                    let shown = output[self.seen..end].to_owned();
                    self.seen = end;
                    return shown;
                }
                assert!(
                    Instant::now() < deadline,
                    "the terminal did not show `{text}` within {timeout:?}; it shows after the \
                     last match: {:?}",
                    &output[self.seen..]
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything shown since the last wait, without consuming it.
    #[must_use]
    pub fn unread(&self) -> String {
        self.output.lock().unwrap_or_else(PoisonError::into_inner)[self.seen..].to_owned()
    }

    /// Types `line` and Enter.
    pub fn type_line(&mut self, line: &str) {
        self.master
            .write_all(format!("{line}\n").as_bytes())
            .expect("type at the terminal");
    }

    /// Waits for the program to exit, up to `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the program") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the program did not exit within {timeout:?}; it shows: {:?}",
                self.unread()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
