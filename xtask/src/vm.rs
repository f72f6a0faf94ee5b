//! `cargo xtask vm`, and booting the test VM for the other commands. The guest's console streams
//! to this process's stdout as it comes; the command's exit status comes back as a marker line
//! on the console. A VM that never prints the marker (panic, boot failure, timeout) is always a
//! failure, never a pass.

use std::{
    fs,
    io::{Read as _, Write as _},
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow};

use crate::{build, initramfs::Initramfs, kernels::Kernel, setup};

/// The marker `/init` prints after the command, followed by its exit status.
const EXIT_MARKER: &str = "KYA-VM-EXIT-STATUS=";

/// `quiet loglevel=3` keeps the console to the command's own output. The LSM list is the one the
/// Debian cloud kernels enable by default, named explicitly so that `bpf` is on whatever the
/// kernel's built-in default; LSMs a kernel lacks (ipe before 6.12) are skipped by the kernel.
const KERNEL_CMDLINE: &str = "console=ttyS0 quiet loglevel=3 panic=-1 lsm=lockdown,capability,landlock,yama,apparmor,tomoyo,bpf,ipe";

/// How long QEMU may take to power off after the marker before it is killed.
const POWER_OFF_GRACE: Duration = Duration::from_secs(30);

/// How often QEMU is checked on.
const POLL: Duration = Duration::from_millis(100);

/// Lines of console shown when the VM fails.
const TAIL_LINES: usize = 40;

#[derive(clap::Args)]
pub struct Args {
    /// Kernel to boot: "6.1", "6.12" or the path of a vmlinuz.
    #[arg(long, default_value = "6.12")]
    kernel: String,
    /// Put a host file or directory into the VM; GUEST defaults to /kya/include/<file name>.
    #[arg(long = "include", value_name = "HOST[:GUEST]", value_parser = parse_include)]
    includes: Vec<(PathBuf, String)>,
    /// Seconds before the VM is killed and the command counts as failed.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 2048)]
    memory: u32,
    /// The command to run in the VM, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// The VM's size and patience.
pub struct Machine {
    pub memory_mib: u32,
    pub timeout: Duration,
}

/// What became of a boot.
pub struct Outcome {
    /// Everything the guest printed, also saved to a log file.
    pub console: String,
    /// The command's exit status, or why the VM never reported one.
    pub status: Result<i32>,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let setup = setup::run()?;
    let kernel = setup.kernel(&args.kernel)?;
    let binaries = build::binaries()?;

    let dir = work_dir("vm")?;
    let mut initramfs = Initramfs::new(&dir.join("root"), &setup.busybox)?;
    for binary in [&binaries.kya, &binaries.kya_agent, &binaries.kya_probe] {
        initramfs.add_tool(binary)?;
    }
    for (host, guest) in &args.includes {
        initramfs.add_path(host, guest)?;
    }
    initramfs.set_command(&args.command)?;
    let initrd = dir.join("initrd.cpio");
    initramfs.pack(&initrd)?;

    let machine = Machine {
        memory_mib: args.memory,
        timeout: Duration::from_secs(args.timeout),
    };
    let status = boot(&kernel, &initrd, &machine, &dir.join("console.log")).status?;
    // Exit statuses above 255 cannot come from a shell; clamp rather than wrap into a success.
    Ok(ExitCode::from(u8::try_from(status).unwrap_or(u8::MAX)))
}

/// A fresh directory under `target/kya-vm/` for one kind of VM run.
pub fn work_dir(name: &str) -> Result<PathBuf> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let dir = metadata
        .target_directory
        .into_std_path_buf()
        .join("kya-vm")
        .join(name);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Boots `kernel` with `initrd`, streams the console to stdout and saves it to `log`.
pub fn boot(kernel: &Kernel, initrd: &Path, machine: &Machine, log: &Path) -> Outcome {
    println!(
        "vm: booting kernel {} ({}) under QEMU/TCG, timeout {} s",
        kernel.label,
        kernel.release,
        machine.timeout.as_secs()
    );
    let started = Instant::now();
    let (console, ending) = match run_qemu(kernel, initrd, machine) {
        Ok(done) => done,
        Err(error) => {
            return Outcome {
                console: String::new(),
                status: Err(error),
            };
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    let console = String::from_utf8_lossy(&console).into_owned();
    let saved = fs::write(log, &console);

    let status = match (exit_status(&console), ending) {
        (Some(status), _) => {
            println!(
                "vm: kernel {} ran the command in {elapsed:.1} s; exit status {status}",
                kernel.label
            );
            Ok(status)
        }
        (None, ending) => {
            let why = match ending {
                Ending::TimedOut => format!(
                    "did not finish within {} s; QEMU was killed",
                    machine.timeout.as_secs()
                ),
                Ending::Exited(status) if console.contains("Kernel panic") => {
                    format!("panicked (QEMU {status})")
                }
                Ending::Exited(status) => format!(
                    "stopped without reporting the command's exit status (QEMU {status}): a boot failure, or the command killed init"
                ),
            };
            let log_note = match saved {
                Ok(()) => format!("full console log: {}", log.display()),
                Err(error) => format!(
                    "the console log could not be saved to {}: {error}",
                    log.display()
                ),
            };
            Err(anyhow!(
                "the VM on kernel {} {why} after {elapsed:.1} s\n--- last {TAIL_LINES} console lines ---\n{}\n--- {log_note}",
                kernel.label,
                tail(&console, TAIL_LINES)
            ))
        }
    };
    Outcome { console, status }
}

enum Ending {
    Exited(std::process::ExitStatus),
    TimedOut,
}

/// Runs QEMU to the end and returns the raw console output and how QEMU ended.
fn run_qemu(kernel: &Kernel, initrd: &Path, machine: &Machine) -> Result<(Vec<u8>, Ending)> {
    let mut command = Command::new("qemu-system-x86_64");
    command
        // KVM hangs Debian kernels in early boot on these machines; TCG is slow but works.
        .args([
            "-accel",
            "tcg",
            "-cpu",
            "max",
            "-smp",
            "2",
            "-nographic",
            "-no-reboot",
        ])
        // No NIC: tests only use loopback, and the NIC's boot ROM would cost boot time.
        .args(["-nic", "none"])
        .arg("-m")
        .arg(machine.memory_mib.to_string())
        .arg("-kernel")
        .arg(&kernel.vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        .arg(KERNEL_CMDLINE)
        // With a terminal on stdin, -nographic would put it in raw mode and take keystrokes.
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut qemu = command
        .spawn()
        .context("could not start qemu-system-x86_64 (`cargo xtask setup` installs it)")?;

    let mut stdout = qemu.stdout.take().expect("stdout is piped");
    let (marker_seen, marker_rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut console = Vec::new();
        let mut buf = [0; 8192];
        let mut scanned = 0;
        // Read errors end the stream like EOF: QEMU is gone either way.
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&buf[..n]);
            let _ = out.flush();
            console.extend_from_slice(&buf[..n]);
            while let Some(end) = console[scanned..].iter().position(|&b| b == b'\n') {
                if exit_status(&String::from_utf8_lossy(&console[scanned..scanned + end])).is_some()
                {
                    let _ = marker_seen.send(());
                }
                scanned += end + 1;
            }
        }
        console
    });

    let mut deadline = Instant::now() + machine.timeout;
    let mut marker = false;
    let ending = loop {
        if let Some(status) = qemu.try_wait()? {
            break Ending::Exited(status);
        }
        if !marker && marker_rx.try_recv().is_ok() {
            marker = true;
            deadline = deadline.min(Instant::now() + POWER_OFF_GRACE);
        }
        if Instant::now() >= deadline {
            let _ = qemu.kill();
            let status = qemu.wait()?;
            // After the marker the command's status is known; a stuck power-off changes nothing.
            break if marker {
                Ending::Exited(status)
            } else {
                Ending::TimedOut
            };
        }
        thread::sleep(POLL);
    };
    let console = reader
        .join()
        .map_err(|_| anyhow!("the console reader panicked"))?;
    Ok((console, ending))
}

/// The status from the last marker line on the console. The last, because a command may
/// print the marker text itself; `/init` prints the real one after the command ends.
fn exit_status(console: &str) -> Option<i32> {
    console.lines().rev().find_map(|line| {
        let rest = &line[line.find(EXIT_MARKER)? + EXIT_MARKER.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

fn tail(console: &str, lines: usize) -> String {
    let all: Vec<&str> = console.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `HOST[:GUEST]` for `--include`.
fn parse_include(spec: &str) -> Result<(PathBuf, String), String> {
    let (host, guest) = if let Some((host, guest)) = spec.split_once(':') {
        (PathBuf::from(host), guest.to_owned())
    } else {
        let host = PathBuf::from(spec);
        let name = host
            .file_name()
            .ok_or_else(|| format!("{spec} names no file"))?
            .to_string_lossy()
            .into_owned();
        (host, format!("/kya/include/{name}"))
    };
    if !host.exists() {
        return Err(format!("{} does not exist", host.display()));
    }
    if !guest.starts_with('/') {
        return Err(format!("guest path {guest} must be absolute"));
    }
    Ok((host, guest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_is_read_from_the_last_marker() {
        assert_eq!(
            exit_status("boot\nKYA-VM-EXIT-STATUS=3\r\n[ 1.0] reboot: Power down\n"),
            Some(3)
        );
        assert_eq!(
            exit_status("KYA-VM-EXIT-STATUS=1\nKYA-VM-EXIT-STATUS=0\n"),
            Some(0)
        );
        // The marker text inside /init's source is not a status.
        assert_eq!(exit_status("echo \"KYA-VM-EXIT-STATUS=$status\"\n"), None);
        assert_eq!(exit_status("Kernel panic - not syncing\n"), None);
    }

    #[test]
    fn include_defaults_to_the_include_directory() {
        let (host, guest) = parse_include("Cargo.toml").unwrap();
        assert_eq!(host, Path::new("Cargo.toml"));
        assert_eq!(guest, "/kya/include/Cargo.toml");
        assert_eq!(
            parse_include("Cargo.toml:/etc/kya.toml").unwrap().1,
            "/etc/kya.toml"
        );
        assert!(parse_include("Cargo.toml:relative").is_err());
        assert!(parse_include("/no/such/file").is_err());
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a\n", 5), "a");
    }
}
