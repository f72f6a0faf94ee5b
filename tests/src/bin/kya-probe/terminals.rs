//! Pushing input into a terminal, the ways a process can: `TIOCSTI` (from a 64-bit process and
//! through the 32-bit system call), and `TIOCLINUX`. Each reports what the kernel answered.
use std::{
    ffi::CString,
    fs::{File, OpenOptions},
    os::{fd::AsRawFd as _, unix::fs::OpenOptionsExt as _},
};

use nix::{errno::Errno, unistd::setsid};

type Outcome = Result<String, Errno>;

/// `TIOCSTI`, `TIOCLINUX` and `TIOCSCTTY` (`asm-generic/ioctls.h`; the same for 32-bit
/// processes).
const TIOCSTI: u32 = 0x5412;
const TIOCLINUX: u32 = 0x541c;
const TIOCSCTTY: u32 = 0x540e;
/// `ioctl` in the 32-bit system call table (`int 0x80`).
const IA32_IOCTL: u32 = 54;

/// Runs terminal operation `name` with `args`; `None` when there is no such operation.
pub fn run(name: &str, args: &[String]) -> Option<Outcome> {
    let arg = |index: usize| args.get(index).map_or("", String::as_str);
    Some(match name {
        // `tiocsti TTY TEXT`: pushes TEXT into TTY's input, byte by byte (`TIOCSTI`).
        "tiocsti" => open(arg(0)).and_then(|tty| push(&tty, arg(1), ioctl64)),
        // `tiocsti-ctty TTY TEXT`: the same from a new session whose controlling terminal TTY
        // is, as a program run from a human's shell has it (without `CAP_SYS_ADMIN` the
        // kernel lets a process push only into its controlling terminal).
        "tiocsti-ctty" => controlling(arg(0)).and_then(|tty| push(&tty, arg(1), ioctl64)),
        // `tiocsti-compat TTY TEXT`: like `tiocsti` through the 32-bit system call (`int
        // 0x80`), which the kernel checks with `file_ioctl_compat` where it has that hook.
        "tiocsti-compat" => open(arg(0)).and_then(|tty| push(&tty, arg(1), ioctl32)),
        // `tioclinux TTY SUBCODE`: `TIOCLINUX` with the one-byte SUBCODE; prints what the
        // ioctl returned.
        "tioclinux" => open(arg(0)).and_then(|tty| tioclinux(&tty, arg(1))),
        _ => return None,
    })
}

fn io_errno(error: &std::io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(0))
}

fn open(path: &str) -> Result<File, Errno> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
        .map_err(|error| io_errno(&error))
}

fn controlling(path: &str) -> Result<File, Errno> {
    setsid()?;
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|error| io_errno(&error))?;
    // Opening made it the controlling terminal already; asking again confirms it.
    // SAFETY: TIOCSCTTY takes an int argument, not a pointer.
    Errno::result(unsafe { libc::ioctl(tty.as_raw_fd(), TIOCSCTTY.into(), 0) })?;
    Ok(tty)
}

/// Pushes each byte of `text` into `tty` with `ioctl`.
fn push(tty: &File, text: &str, ioctl: fn(&File, u32, *const u8) -> Result<i32, Errno>) -> Outcome {
    let bytes = CString::new(text).expect("no NUL");
    for byte in bytes.as_bytes() {
        ioctl(tty, TIOCSTI, byte)?;
    }
    Ok(format!("{} bytes", text.len()))
}

fn ioctl64(tty: &File, cmd: u32, arg: *const u8) -> Result<i32, Errno> {
    // SAFETY: the terminal ioctls used here read one byte at `arg`.
    Errno::result(unsafe { libc::ioctl(tty.as_raw_fd(), cmd.into(), arg) })
}

/// `ioctl` through the 32-bit system call: the byte is copied to memory below 4 GiB, where a
/// 32-bit pointer reaches it.
fn ioctl32(tty: &File, cmd: u32, arg: *const u8) -> Result<i32, Errno> {
    // SAFETY: a fresh anonymous page, owned and unmapped here.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
            -1,
            0,
        )
    };
    if page == libc::MAP_FAILED {
        return Err(Errno::last());
    }
    // SAFETY: `arg` points at one byte; the page is writable.
    unsafe { page.cast::<u8>().write(*arg) };
    #[expect(clippy::cast_possible_truncation, reason = "MAP_32BIT: below 4 GiB")]
    let low = page as usize as u32;
    #[expect(clippy::cast_sign_loss, reason = "a descriptor is not negative")]
    let fd = tty.as_raw_fd() as u32;
    let mut result = IA32_IOCTL;
    // SAFETY: the 32-bit `ioctl(fd, cmd, low)`: `ebx`, `ecx`, `edx` hold the arguments, `eax`
    // the call and then its result. `rbx` cannot be named as an operand, so it is saved and
    // restored around the call; the kernel clears r8 to r11 on this path.
    unsafe {
        core::arch::asm!(
            "push rbx",
            "mov ebx, {fd:e}",
            "int 0x80",
            "pop rbx",
            fd = in(reg) fd,
            inout("eax") result,
            in("ecx") cmd,
            in("edx") low,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
        );
    }
    // SAFETY: the page mapped above.
    unsafe { libc::munmap(page, 4096) };
    #[expect(
        clippy::cast_possible_wrap,
        reason = "eax holds the int the call returned"
    )]
    let result = result as i32;
    if result < 0 {
        Err(Errno::from_raw(-result))
    } else {
        Ok(result)
    }
}

fn tioclinux(tty: &File, subcode: &str) -> Outcome {
    let subcode: u8 = subcode.parse().expect("a TIOCLINUX subcode");
    // Room for what the subcode reads or writes after its first byte.
    let buffer = [subcode, 0, 0, 0, 0, 0, 0, 0];
    ioctl64(tty, TIOCLINUX, buffer.as_ptr()).map(|returned| format!("returned {returned}"))
}
