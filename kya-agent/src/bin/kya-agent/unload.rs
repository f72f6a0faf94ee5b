//! `kya-agent unload`: removes every program, link and map kya pinned, which ends enforcement.
//! Refused while a daemon runs (it would keep its programs attached, and enforcing, anyway).
use std::{os::unix::net::UnixStream, path::Path, process::ExitCode};

use kya_agent::kernel::pins::PinDirs;

pub fn run(socket: &Path, pin_dir: &Path) -> ExitCode {
    if UnixStream::connect(socket).is_ok() {
        eprintln!(
            "kya-agent unload: kya-agent is running (it answers on {}); stop it first \
             (systemctl stop kya-agent), then unload",
            socket.display()
        );
        return ExitCode::FAILURE;
    }
    match PinDirs::new(pin_dir).remove_everything() {
        Ok(0) => {
            println!(
                "nothing pinned under {}; kya is not loaded",
                pin_dir.display()
            );
            ExitCode::SUCCESS
        }
        Ok(removed) => {
            println!(
                "removed {removed} pins under {}: kya's programs are detached and its maps \
                 freed; agents are no longer confined",
                pin_dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!(
                "kya-agent unload: {}: {error} (run as root, outside any agent)",
                pin_dir.display()
            );
            ExitCode::FAILURE
        }
    }
}
