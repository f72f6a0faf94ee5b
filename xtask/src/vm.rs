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

use crate::{build, helpers, initramfs::Initramfs, kernels::Kernel, setup};

/// The marker `/init` prints after the command, followed by its exit status.
const EXIT_MARKER: &str = "KYA-VM-EXIT-STATUS=";

/// `quiet loglevel=3` keeps the console to the command's own output. The LSM list is what the
/// Debian cloud kernels enable by default (booting without `lsm=` lists the same on 6.1 and
/// 6.12), named explicitly so that `bpf` is on whatever a kernel's built-in default; the kernel
/// skips LSMs it lacks (ipe before 6.12).
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

/// The VM's size and patience, and how its console is shown.
#[derive(Clone)]
pub struct Machine {
    pub memory_mib: u32,
    pub timeout: Duration,
    /// Printed in front of every console line on stdout, so that VMs running side by side
    /// can be told apart; `None` passes the console through as it comes.
    pub console_prefix: Option<String>,
    /// Time inside the VM counts executed instructions, not host time (`-icount
    /// shift=0,sleep=off`, one TCG thread): one instruction is one nanosecond, and an idle guest
    /// skips ahead to its next timer at once. For the benchmark only: the figures no longer move
    /// with the host's load. With it the VM has one vCPU: with two, both advanced the one clock,
    /// and a measured loop's time counted whatever the other vCPU ran meanwhile.
    pub instruction_clock: bool,
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

    let dir = WorkDir::new("vm")?;
    let mut initramfs = Initramfs::new(&dir.path.join("root"), &setup.busybox)?;
    for binary in [&binaries.kya, &binaries.kya_agent, &binaries.kya_probe] {
        initramfs.add_tool(binary)?;
    }
    helpers::add(&mut initramfs)?;
    crate::accounts::add(&mut initramfs)?;
    for (host, guest) in &args.includes {
        initramfs.add_path(host, guest)?;
    }
    initramfs.set_command(&args.command)?;
    let initrd = dir.path.join("initrd.cpio");
    initramfs.pack(&initrd)?;

    let machine = Machine {
        memory_mib: args.memory,
        timeout: Duration::from_secs(args.timeout),
        console_prefix: None,
        instruction_clock: false,
    };
    let status = boot(&kernel, &initrd, &machine, &dir.path.join("console.log")).status?;
    // Exit statuses above 255 cannot come from a shell; clamp rather than wrap into a success.
    Ok(ExitCode::from(u8::try_from(status).unwrap_or(u8::MAX)))
}

/// A directory of its own under `target/kya-vm/` for one run. Several runs may share a
/// workspace at once (two terminals, an editor's test runner), so each gets a fresh
/// `<kind>-<pid>-<time>` directory and holds a lock on it while it runs. A new run removes the
/// directories of its kind that nobody holds any more, so a run's files (the console log above
/// all) stay until the next run of the same command.
pub struct WorkDir {
    pub path: PathBuf,
    /// Held until the run ends; the lock is the "still in use" mark.
    _lock: fs::File,
}

impl WorkDir {
    pub fn new(kind: &str) -> Result<Self> {
        let metadata = cargo_metadata::MetadataCommand::new()
            .no_deps()
            .exec()
            .context("cargo metadata")?;
        let base = metadata.target_directory.into_std_path_buf().join("kya-vm");
        fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;

        let prefix = format!("{kind}-");
        for entry in fs::read_dir(&base)?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix)
                && fs::File::open(entry.path().join("lock"))
                    .is_ok_and(|lock| lock.try_lock().is_ok())
            {
                let _ = fs::remove_dir_all(entry.path());
            }
        }

        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let name = format!("{prefix}{}-{nanos}", std::process::id());
        // Lock under a name the clean-up above skips, then rename: no other run can catch the
        // directory between its creation and its lock.
        let staging = base.join(format!(".{name}"));
        fs::create_dir(&staging).with_context(|| format!("creating {}", staging.display()))?;
        let lock = fs::File::create(staging.join("lock"))?;
        lock.lock()?;
        let path = base.join(name);
        fs::rename(&staging, &path)?;
        Ok(Self { path, _lock: lock })
    }
}

/// Boots of one kernel at most, when the emulator faults (see `boot`).
const BOOT_ATTEMPTS: u32 = 3;

/// Marker `init.sh` prints right before it runs the command.
const COMMAND_START: &str = "KYA-VM-COMMAND-START";

/// Boots `kernel` with `initrd`, streams the console to stdout and saves it to `log`. The
/// emulator's own faults are booted through again, up to `BOOT_ATTEMPTS` times: a kernel that
/// dies before the command starts (emulated SMP kernels occasionally oops while patching their
/// own code during early boot), and the int3 oops of a half-patched BPF LSM hook (see
/// `is_emulated_patching_fault`). Any other failure after the command started is final.
pub fn boot(kernel: &Kernel, initrd: &Path, machine: &Machine, log: &Path) -> Outcome {
    let mut attempt = 1;
    loop {
        let outcome = boot_once(kernel, initrd, machine, log);
        let why = match &outcome.status {
            Err(_) if !outcome.console.contains(COMMAND_START) => "died before the command started",
            Err(_) if is_emulated_patching_fault(&outcome.console) => {
                "hit the emulator's code-patching fault (int3 oops in a BPF LSM hook)"
            }
            _ => return outcome,
        };
        if attempt == BOOT_ATTEMPTS {
            return outcome;
        }
        println!(
            "vm: kernel {} {why}; booting again ({} of {BOOT_ATTEMPTS})",
            kernel.label,
            attempt + 1
        );
        attempt += 1;
    }
}

/// Whether the kernel died of the int3 that x86 text patching leaves in a BPF LSM hook's call
/// site while a program is being attached: under TCG with a thread per vCPU, another vCPU can
/// execute the half-patched site after the patching CPU has stopped expecting it. On hardware
/// the patching protocol makes that impossible, and kya's programs never run at that address
/// (they run in the trampoline it calls), so the fault is the emulator's, not kya's.
fn is_emulated_patching_fault(console: &str) -> bool {
    console.contains("Oops: int3")
        && console
            .lines()
            .any(|line| line.contains("RIP: 0010:bpf_lsm_"))
}

fn boot_once(kernel: &Kernel, initrd: &Path, machine: &Machine, log: &Path) -> Outcome {
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
            let label = &kernel.label;
            let what = match ending {
                Ending::TimedOut => format!(
                    "the VM on kernel {label} did not finish within {} s; QEMU was killed",
                    machine.timeout.as_secs()
                ),
                Ending::Exited(_)
                    if let Some(panic) = console.lines().find(|l| l.contains("Kernel panic")) =>
                {
                    format!(
                        "kernel {label} panicked after {elapsed:.1} s: {}",
                        panic.trim()
                    )
                }
                Ending::Exited(status) => format!(
                    "the VM on kernel {label} stopped after {elapsed:.1} s without reporting the command's exit status (QEMU {status}): the kernel did not boot, or the command killed init"
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
                "{what}\n--- last {TAIL_LINES} console lines ---\n{}\n--- {log_note}",
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
        // Two vCPUs, one host thread each. Rarely, TCG lets one vCPU run stale translated code
        // while the other patches kernel text, and attaching a BPF LSM program dies with an
        // int3 oops in the hook; `boot` recognises that and boots again. The alternatives cost
        // more than they save: one vCPU, or two on one thread (`thread=single`, which switches
        // every 100 ms), let one busy process starve the daemon and the tests. The benchmark
        // is the exception (see `instruction_clock`).
        .args(["-cpu", "max", "-smp"])
        .arg(if machine.instruction_clock { "1" } else { "2" })
        .arg("-no-reboot")
        // The serial console on stdout and no screen. Not -nographic: it also mirrors the
        // firmware's screen to the serial port, with escape codes that reset the user's terminal.
        .args(["-display", "none", "-serial", "stdio"])
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
        // The guest reads nothing, and QEMU leaves the terminal's mode alone.
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    if machine.instruction_clock {
        // icount needs one TCG thread for all vCPUs.
        command.args([
            "-accel",
            "tcg,thread=single",
            "-icount",
            "shift=0,sleep=off",
        ]);
    } else {
        command.args(["-accel", "tcg"]);
    }
    let mut qemu = command
        .spawn()
        .context("could not start qemu-system-x86_64 (`cargo xtask setup` installs it)")?;

    let mut stdout = qemu.stdout.take().expect("stdout is piped");
    let (marker_seen, marker_rx) = mpsc::channel();
    let prefix = machine.console_prefix.clone();
    let reader = thread::spawn(move || {
        let mut console = Vec::new();
        let mut buf = [0; 8192];
        let mut scanned = 0;
        // Read errors end the stream like EOF: QEMU is gone either way.
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            console.extend_from_slice(&buf[..n]);
            if prefix.is_none() {
                echo(&buf[..n]);
            }
            while let Some(end) = console[scanned..].iter().position(|&b| b == b'\n') {
                let line = &console[scanned..=scanned + end];
                if let Some(prefix) = &prefix {
                    echo(&[prefix.as_bytes(), line].concat());
                }
                if exit_status(&String::from_utf8_lossy(line)).is_some() {
                    let _ = marker_seen.send(());
                }
                scanned += end + 1;
            }
        }
        if let Some(prefix) = &prefix
            && scanned < console.len()
        {
            echo(&[prefix.as_bytes(), &console[scanned..], b"\n"].concat());
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

/// Writes console output to stdout at once (errors there are no reason to stop the VM).
fn echo(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes);
    let _ = out.flush();
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
    fn only_the_int3_of_a_half_patched_lsm_hook_counts_as_the_emulators_fault() {
        let fault = "[ 11.2] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI\n\
                     [ 11.2] RIP: 0010:bpf_lsm_file_permission+0x5/0x10\n\
                     [ 11.2] Kernel panic - not syncing: Fatal exception in interrupt\n";
        assert!(is_emulated_patching_fault(fault));
        let elsewhere = fault.replace("bpf_lsm_file_permission", "do_sys_openat2");
        assert!(!is_emulated_patching_fault(&elsewhere));
        let other_oops = fault.replace("Oops: int3", "BUG: kernel NULL pointer dereference");
        assert!(!is_emulated_patching_fault(&other_oops));
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a\n", 5), "a");
    }
}
