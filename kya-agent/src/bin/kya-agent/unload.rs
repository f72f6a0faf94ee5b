//! `kya-agent unload`: removes every program, link and map kya pinned, which ends enforcement.
//! Refused while a daemon runs (it would keep its programs attached, and enforcing, anyway).
//!
//! Removing the pins drops the kernel's last references to kya's links, but the kernel lets
//! them go later (on 6.12, seconds later, while the programs still run). So `unload` notes the
//! ids of the programs behind the pinned links first and returns only once the kernel has
//! freed every one: then no kya program runs any more.
use std::{
    os::unix::net::UnixStream,
    path::Path,
    process::ExitCode,
    thread,
    time::{Duration, Instant},
};

use kya_agent::kernel::pins::{PinDirs, still_loaded};

/// How long `unload` waits for the kernel to free kya's programs once their pins are gone.
const DETACH_TIMEOUT: Duration = Duration::from_secs(30);

pub fn run(socket: &Path, pin_dir: &Path) -> ExitCode {
    if UnixStream::connect(socket).is_ok() {
        eprintln!(
            "kya-agent unload: kya-agent is running (it answers on {}); stop it first \
             (systemctl stop kya-agent), then unload",
            socket.display()
        );
        return ExitCode::FAILURE;
    }
    let pins = PinDirs::new(pin_dir);
    let programs = pins.linked_program_ids();
    match pins.remove_everything() {
        Ok(0) => {
            println!(
                "nothing pinned under {}; kya is not loaded",
                pin_dir.display()
            );
            ExitCode::SUCCESS
        }
        Ok(removed) => {
            if let Err(running) = wait_until_freed(&programs) {
                eprintln!(
                    "kya-agent unload: removed {removed} pins under {}, but after {} s the kernel \
                     still runs {} of kya's programs (ids {running:?}): something else holds them \
                     (a process with their descriptors, bpftool); find it with `bpftool prog \
                     show id ID` and end it",
                    pin_dir.display(),
                    DETACH_TIMEOUT.as_secs(),
                    running.len(),
                );
                return ExitCode::FAILURE;
            }
            println!(
                "removed {removed} pins under {}: the kernel has freed kya's {} programs and its \
                 maps; agents are no longer confined",
                pin_dir.display(),
                programs.len()
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

/// Waits until the kernel has freed every program of `ids` (a freed program runs no more);
/// the ids still loaded when [`DETACH_TIMEOUT`] is up.
fn wait_until_freed(ids: &[u32]) -> Result<(), Vec<u32>> {
    let deadline = Instant::now() + DETACH_TIMEOUT;
    loop {
        let running = still_loaded(ids);
        if running.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(running);
        }
        thread::sleep(Duration::from_millis(20));
    }
}
