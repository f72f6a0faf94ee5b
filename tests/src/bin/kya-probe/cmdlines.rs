//! Other processes' command lines, read the ways a process can reach them; and a minimal `ps`.
//! Each operation reports what the kernel answered.
use std::{ffi::CString, fs::File, io::Read as _};

use nix::{
    errno::Errno,
    fcntl::{OFlag, openat},
    sys::{
        signal::{Signal, kill},
        stat::Mode,
        wait::waitpid,
    },
    unistd::{ForkResult, fork},
};

type Outcome = Result<String, Errno>;

/// Runs command-line operation `name` with `args`; `None` when there is no such operation.
pub fn run(name: &str, args: &[String]) -> Option<Outcome> {
    let arg = |index: usize| args.get(index).map_or("", String::as_str);
    Some(match name {
        // `read-at DIR NAME`: opens the directory DIR, then NAME relative to it (`openat`), and
        // reads it to the end.
        "read-at" => read_at(arg(0), arg(1)),
        // `child-cmdline`: forks a child and reads its command line, by its process and by its
        // thread directory.
        "child-cmdline" => child_cmdline(),
        // `ps`: what a minimal `ps` shows: `PID:NAME` from `/proc/PID/stat` and
        // `/proc/PID/comm` for every process, with `:ARGS` where the command line was readable.
        "ps" => Ok(ps()),
        _ => return None,
    })
}

fn read_to_end(mut file: File) -> Result<Vec<u8>, Errno> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|error| Errno::from_raw(error.raw_os_error().unwrap_or(0)))?;
    Ok(bytes)
}

fn read_path(path: &str) -> Result<Vec<u8>, Errno> {
    let file =
        File::open(path).map_err(|error| Errno::from_raw(error.raw_os_error().unwrap_or(0)))?;
    read_to_end(file)
}

fn read_at(dir: &str, name: &str) -> Outcome {
    let dir =
        File::open(dir).map_err(|error| Errno::from_raw(error.raw_os_error().unwrap_or(0)))?;
    let name = CString::new(name).expect("no NUL in a name");
    let fd = openat(
        &dir,
        name.as_c_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    read_to_end(File::from(fd)).map(|bytes| format!("{} bytes", bytes.len()))
}

fn child_cmdline() -> Outcome {
    // SAFETY: the child only sleeps and exits.
    let child = match unsafe { fork() }? {
        ForkResult::Child => {
            std::thread::sleep(std::time::Duration::from_mins(1));
            std::process::exit(0)
        }
        ForkResult::Parent { child } => child,
    };
    let outcome = read_path(&format!("/proc/{child}/cmdline")).and_then(|by_process| {
        read_path(&format!("/proc/{child}/task/{child}/cmdline"))
            .map(|by_thread| format!("{} and {} bytes", by_process.len(), by_thread.len()))
    });
    let _ = kill(child, Signal::SIGKILL);
    let _ = waitpid(child, None);
    outcome
}

fn ps() -> String {
    let mut listed = Vec::new();
    let entries = std::fs::read_dir("/proc").expect("list /proc");
    for entry in entries.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        // A process that ended meanwhile is left out, as `ps` leaves it out.
        let (Ok(stat), Ok(comm)) = (
            read_path(&format!("/proc/{pid}/stat")),
            read_path(&format!("/proc/{pid}/comm")),
        ) else {
            continue;
        };
        let stat = String::from_utf8_lossy(&stat);
        let comm = String::from_utf8_lossy(&comm);
        let from_stat = stat
            .split_once('(')
            .and_then(|(_, rest)| rest.rsplit_once(')'))
            .map_or("", |(name, _)| name);
        if from_stat != comm.trim_end() {
            // It executed something else between the two reads.
            continue;
        }
        let mut line = format!("{pid}:{from_stat}");
        if let Ok(args) = read_path(&format!("/proc/{pid}/cmdline")) {
            let args: Vec<u8> = args
                .iter()
                .map(|&byte| if byte == 0 { b' ' } else { byte })
                .collect();
            line.push(':');
            line.push_str(String::from_utf8_lossy(&args).trim_end());
        }
        listed.push(line.replace(' ', "_"));
    }
    listed.join(" ")
}
