//! Opening files by handle (`name_to_handle_at`, `open_by_handle_at`): the way to a file that
//! names no path, which root can use once it has the handle of a file it was refused.
use std::{ffi::CString, fmt::Write as _, fs::File, io::Read as _, os::fd::AsRawFd as _};

use nix::errno::Errno;

type Outcome = Result<String, Errno>;

/// Room for any filesystem's handle (`MAX_HANDLE_SZ`).
const MAX_HANDLE_BYTES: u32 = 128;

/// `struct file_handle` with room for its bytes.
#[repr(C)]
struct FileHandle {
    handle_bytes: u32,
    handle_type: i32,
    f_handle: [u8; MAX_HANDLE_BYTES as usize],
}

/// Runs handle operation `name` with `args`; `None` when there is no such operation.
pub fn run(name: &str, args: &[String]) -> Option<Outcome> {
    let arg = |index: usize| args.get(index).map_or("", String::as_str);
    Some(match name {
        // `handle-of PATH`: prints `TYPE:HEX`, the handle of the file at PATH.
        "handle-of" => handle_of(arg(0)),
        // `open-by-handle MOUNT TYPE:HEX`: opens the handle on the filesystem mounted at MOUNT
        // and reads the file.
        "open-by-handle" => open_by_handle(arg(0), arg(1)),
        _ => return None,
    })
}

fn handle_of(path: &str) -> Outcome {
    let path = CString::new(path).expect("a path without NUL");
    let mut handle = FileHandle {
        handle_bytes: MAX_HANDLE_BYTES,
        handle_type: 0,
        f_handle: [0; MAX_HANDLE_BYTES as usize],
    };
    let mut mount_id = 0;
    // SAFETY: `handle` has room for `handle_bytes` bytes; the pointers outlive the call.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            libc::AT_FDCWD,
            path.as_ptr(),
            &raw mut handle,
            &raw mut mount_id,
            0,
        )
    })?;
    let bytes = &handle.f_handle[..handle.handle_bytes as usize];
    let hex = bytes.iter().fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    });
    Ok(format!("{}:{hex}", handle.handle_type))
}

fn open_by_handle(mount: &str, written: &str) -> Outcome {
    let (kind, hex) = written.split_once(':').expect("TYPE:HEX");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).expect("hex digits"))
        .collect();
    let mut handle = FileHandle {
        handle_bytes: u32::try_from(bytes.len()).expect("a short handle"),
        handle_type: kind.parse().expect("a handle type"),
        f_handle: [0; MAX_HANDLE_BYTES as usize],
    };
    handle.f_handle[..bytes.len()].copy_from_slice(&bytes);
    let mount = File::open(mount).map_err(|error| io_errno(&error))?;
    // SAFETY: `handle` is a valid file_handle; the descriptor comes back owned.
    let fd = Errno::result(unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount.as_raw_fd(),
            &raw mut handle,
            libc::O_RDONLY,
        )
    })?;
    // SAFETY: the call returned a new descriptor that nothing else owns.
    let mut file = unsafe {
        <File as std::os::fd::FromRawFd>::from_raw_fd(i32::try_from(fd).expect("a descriptor"))
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|error| io_errno(&error))?;
    Ok(format!("{} bytes", bytes.len()))
}

fn io_errno(error: &std::io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO))
}
