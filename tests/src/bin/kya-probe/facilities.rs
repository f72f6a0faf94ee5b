//! The kernel facilities root could use to get around every rule: loading kernel code, the
//! kernel's helper programs, raw memory and disks. Each operation makes the system call itself
//! and reports what the kernel answered.
use std::{
    ffi::CString,
    fmt::Write as _,
    fs::{File, OpenOptions},
    io::{Read as _, Seek as _, SeekFrom, Write as _},
    os::{
        fd::{AsRawFd as _, BorrowedFd},
        unix::fs::{FileTypeExt as _, OpenOptionsExt as _},
    },
};

use nix::{
    errno::Errno,
    sys::stat::{Mode, SFlag, makedev, mknod},
};

type Outcome = Result<String, Errno>;

/// `KEXEC_FILE_NO_INITRAMFS` from `linux/kexec.h`.
const KEXEC_FILE_NO_INITRAMFS: u64 = 4;
/// One more segment than `kexec_load` takes (`KEXEC_SEGMENT_MAX`).
const TOO_MANY_SEGMENTS: u64 = 17;
/// `TIOCSETD`: set a terminal's line discipline.
const TIOCSETD: u64 = 0x5423;

/// Runs facility operation `name` with `args`; `None` when there is no such operation.
pub fn run(name: &str, args: &[String]) -> Option<Outcome> {
    let arg = |index: usize| args.get(index).map_or("", String::as_str);
    Some(match name {
        // `init-module FILE`: hands FILE's bytes to `init_module`.
        "init-module" => init_module(arg(0)),
        // `finit-module FILE`: has the kernel read a module from FILE (`finit_module`).
        "finit-module" => finit_module(arg(0)),
        // `kexec-file-load FILE`: has the kernel read a kernel to switch to from FILE.
        "kexec-file-load" => kexec_file_load(arg(0)),
        // `kexec-load`: `kexec_load` with more segments than it takes (nothing is loaded).
        "kexec-load" => kexec_load(),
        // `set-ldisc N`: sets line discipline N on a new pseudo-terminal; the kernel asks for
        // module `tty-ldisc-N` when it has no such discipline.
        "set-ldisc" => set_ldisc(arg(0)),
        // `write PATH TEXT`: opens PATH for writing and writes TEXT.
        "write" => write_path(arg(0), arg(1)),
        // `write-fd FD TEXT`: writes TEXT through descriptor FD.
        "write-fd" => write_fd(arg(0), arg(1)),
        // `read-head PATH COUNT [OFFSET]`: reads COUNT bytes at OFFSET; prints them as hex.
        "read-head" => read_head(arg(0), arg(1), arg(2)),
        // `find-bytes PATH TEXT LIMIT`: reads up to LIMIT bytes of PATH (a disk, say) and says
        // whether TEXT is among them (`ok found` or `ok absent`).
        "find-bytes" => find_bytes(arg(0), arg(1), arg(2)),
        // `mknod PATH c|b MAJOR MINOR`: makes a device node.
        "mknod" => make_node(arg(0), arg(1), arg(2), arg(3)),
        _ => return None,
    })
}

fn io_errno(error: &std::io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(0))
}

fn empty_params() -> CString {
    CString::new("").expect("no NUL")
}

fn init_module(path: &str) -> Outcome {
    let image = std::fs::read(path).map_err(|error| io_errno(&error))?;
    let params = empty_params();
    // SAFETY: init_module reads `len` bytes of the image and the NUL-terminated parameters.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_init_module,
            image.as_ptr(),
            image.len(),
            params.as_ptr(),
        )
    })?;
    Ok("loaded".to_owned())
}

fn finit_module(path: &str) -> Outcome {
    let file = File::open(path).map_err(|error| io_errno(&error))?;
    let params = empty_params();
    // SAFETY: finit_module with an open descriptor, NUL-terminated parameters and no flags.
    Errno::result(unsafe {
        libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), params.as_ptr(), 0)
    })?;
    Ok("loaded".to_owned())
}

fn kexec_file_load(path: &str) -> Outcome {
    let file = File::open(path).map_err(|error| io_errno(&error))?;
    let cmdline = empty_params();
    // SAFETY: kexec_file_load with an open descriptor, no initramfs and an empty command line
    // (its length counts the NUL).
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_kexec_file_load,
            file.as_raw_fd(),
            -1,
            1,
            cmdline.as_ptr(),
            KEXEC_FILE_NO_INITRAMFS,
        )
    })?;
    Ok("loaded".to_owned())
}

fn kexec_load() -> Outcome {
    // SAFETY: kexec_load refuses the segment count before it reads the (null) segments.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_kexec_load,
            0,
            TOO_MANY_SEGMENTS,
            std::ptr::null::<u8>(),
            0,
        )
    })?;
    Ok("loaded".to_owned())
}

fn set_ldisc(discipline: &str) -> Outcome {
    let discipline: libc::c_int = discipline.parse().expect("a line discipline number");
    let terminal = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open("/dev/ptmx")
        .map_err(|error| io_errno(&error))?;
    // SAFETY: TIOCSETD reads one int.
    Errno::result(unsafe { libc::ioctl(terminal.as_raw_fd(), TIOCSETD, &raw const discipline) })?;
    Ok("set".to_owned())
}

fn write_path(path: &str, text: &str) -> Outcome {
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|error| io_errno(&error))?;
    file.write_all(text.as_bytes())
        .map_err(|error| io_errno(&error))?;
    Ok(String::new())
}

fn write_fd(fd: &str, text: &str) -> Outcome {
    let fd: i32 = fd.parse().expect("a descriptor number");
    // SAFETY: the descriptor stays open for the life of this one-shot process.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let written = nix::unistd::write(fd, text.as_bytes())?;
    Ok(format!("{written} bytes"))
}

fn open_at(path: &str, offset: &str) -> Result<File, Errno> {
    let mut file = File::open(path).map_err(|error| io_errno(&error))?;
    if !offset.is_empty() {
        let offset =
            u64::from_str_radix(offset.trim_start_matches("0x"), 16).expect("a hexadecimal offset");
        file.seek(SeekFrom::Start(offset))
            .map_err(|error| io_errno(&error))?;
    }
    Ok(file)
}

fn read_head(path: &str, count: &str, offset: &str) -> Outcome {
    let count: usize = count.parse().expect("a byte count");
    let mut file = open_at(path, offset)?;
    let mut bytes = vec![0; count];
    let read = file.read(&mut bytes).map_err(|error| io_errno(&error))?;
    Ok(bytes[..read].iter().fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    }))
}

fn find_bytes(path: &str, needle: &str, limit: &str) -> Outcome {
    let limit: u64 = limit.parse().expect("a byte limit");
    let file = open_at(path, "")?;
    let mut bytes = Vec::new();
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|error| io_errno(&error))?;
    let found = bytes
        .windows(needle.len())
        .any(|window| window == needle.as_bytes());
    Ok(if found { "found" } else { "absent" }.to_owned())
}

fn make_node(path: &str, kind: &str, major: &str, minor: &str) -> Outcome {
    let kind = match kind {
        "c" => SFlag::S_IFCHR,
        "b" => SFlag::S_IFBLK,
        other => panic!("a node is c or b, not {other}"),
    };
    let device = makedev(
        major.parse().expect("a major number"),
        minor.parse().expect("a minor number"),
    );
    mknod(path, kind, Mode::from_bits_truncate(0o600), device)?;
    let made = std::fs::metadata(path).map_err(|error| io_errno(&error))?;
    let file_type = made.file_type();
    assert!(file_type.is_char_device() || file_type.is_block_device());
    Ok(String::new())
}
