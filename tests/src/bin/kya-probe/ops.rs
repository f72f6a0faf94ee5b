//! One-shot operations on files and processes: each prints `result ok` or `result errno N`
//! (the errno of the first step that failed), so tests can assert on exactly what the kernel
//! answered.
use std::{
    ffi::CString,
    fs::File,
    io::{IoSliceMut, Read as _},
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
        unix::{fs::OpenOptionsExt as _, net::UnixStream},
    },
    path::Path,
};

use nix::{
    errno::Errno,
    sys::{
        mman::{MapFlags, ProtFlags, mmap},
        ptrace,
        socket::{ControlMessageOwned, MsgFlags, recvmsg},
        uio::{RemoteIoVec, process_vm_readv},
    },
    unistd::Pid,
};

type Outcome = Result<String, Errno>;

/// Runs operation `name` with `args`; `None` when there is no such operation.
pub fn run(name: &str, args: &[String]) -> Option<Outcome> {
    let arg = |index: usize| args.get(index).map_or("", String::as_str);
    Some(match name {
        "read" => read_path(arg(0)),
        "read-each" => Ok(read_each(args)),
        "read-fd" => read_fd(parse_fd(arg(0))),
        "recv-fd-read" => recv_fd(arg(0)).and_then(read_fd),
        "mmap-fd" => mmap_fd(parse_fd(arg(0))),
        "sendfile-fd" => sendfile_fd(parse_fd(arg(0))),
        "aio-read-fd" => aio_read_fd(parse_fd(arg(0))),
        "uring-read-fd" => uring_read_fd(parse_fd(arg(0))),
        "uring-open-read" => uring_open_read(arg(0)),
        "link" => errno(std::fs::hard_link(arg(0), arg(1)).map_err(|error| io_errno(&error))),
        "rename" => errno(std::fs::rename(arg(0), arg(1)).map_err(|error| io_errno(&error))),
        "walk" => walk(Path::new(arg(0))),
        "list" => std::fs::read_dir(arg(0))
            .map(|entries| format!("{} entries", entries.count()))
            .map_err(|error| io_errno(&error)),
        "signal" => signal(arg(0), arg(1)),
        "unlink" => errno(std::fs::remove_file(arg(0)).map_err(|error| io_errno(&error))),
        "open-write" => io(std::fs::OpenOptions::new().write(true).open(arg(0))),
        "create" => io(std::fs::File::create_new(arg(0))),
        "truncate" => errno(nix::unistd::truncate(arg(0), 0)),
        // Truncation by an open that only reads (Linux truncates when O_TRUNC is allowed).
        "open-trunc" => io(std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_TRUNC)
            .open(arg(0))),
        // SAFETY: the descriptor was handed to the probe, which owns nothing else under it.
        "ftruncate-fd" => errno(nix::unistd::ftruncate(
            unsafe { std::os::fd::BorrowedFd::borrow_raw(parse_fd(arg(0))) },
            0,
        )),
        "chmod" => io(std::fs::set_permissions(
            arg(0),
            std::os::unix::fs::PermissionsExt::from_mode(
                u32::from_str_radix(arg(1), 8).expect("an octal mode"),
            ),
        )),
        "chown" => io(std::os::unix::fs::chown(
            arg(0),
            Some(arg(1).parse().expect("a uid")),
            None,
        )),
        "symlink" => io(std::os::unix::fs::symlink(arg(0), arg(1))),
        "mkdir" => io(std::fs::create_dir(arg(0))),
        "rmdir" => io(std::fs::remove_dir(arg(0))),
        "write" => write_path(arg(0), arg(1)),
        "write-fd" => write_fd(parse_fd(arg(0)), arg(1)),
        "programs" => Ok(programs()),
        "clone3-into" => clone_into_cgroup(arg(0)),
        "bpf-map-create" => bpf_map_create(),
        "flood-open" => Ok(flood_open(arg(0), arg(1).parse().expect("a count"))),
        "race-read" => Ok(race_read(arg(0), arg(1).parse().expect("a thread count"))),
        "environ" => read_path(&format!("/proc/{}/environ", arg(0))),
        "mem" => read_mem(arg(0)),
        "vm-readv" => vm_readv(arg(0)),
        "ptrace" => ptrace_attach(arg(0)),
        _ => return None,
    })
}

fn parse_fd(text: &str) -> RawFd {
    text.parse().expect("a descriptor number")
}

fn io_errno(error: &std::io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(0))
}

fn io<T>(result: std::io::Result<T>) -> Outcome {
    errno(result.map_err(|error| io_errno(&error)))
}

fn errno<T>(result: Result<T, Errno>) -> Outcome {
    result.map(|_| String::new())
}

/// Opens `path` for writing and writes `text` (a control file takes one write).
fn write_path(path: &str, text: &str) -> Outcome {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|error| io_errno(&error))?;
    io(file.write_all(text.as_bytes()))
}

/// Every loaded BPF program as `NAME=VERIFIED_INSTRUCTIONS`, for reading the verifier's work.
fn programs() -> String {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .map(|program| {
            format!(
                "{}={}",
                program.name_as_str().unwrap_or("?"),
                program.verified_instruction_count().unwrap_or(0)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes `text` through descriptor `fd`, which the process inherited.
fn write_fd(fd: RawFd, text: &str) -> Outcome {
    // SAFETY: write(2) from a valid buffer; a bad descriptor is an error, not UB.
    let written = unsafe { libc::write(fd, text.as_ptr().cast(), text.len()) };
    Errno::result(written).map(|_| String::new())
}

/// `struct clone_args` (`linux/sched.h`), as far as `cgroup`.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Creates a child directly inside the cgroup directory `path` (`clone3` with
/// `CLONE_INTO_CGROUP`); the child exits at once and is reaped.
fn clone_into_cgroup(path: &str) -> Outcome {
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let dir = File::open(path).map_err(|error| io_errno(&error))?;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: u64::try_from(libc::SIGCHLD).expect("signal number"),
        cgroup: u64::try_from(dir.as_raw_fd()).expect("open fd"),
        ..CloneArgs::default()
    };
    // SAFETY: a fork-like clone3 (no shared memory or stack); the child only exits.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            std::ptr::from_ref(&args),
            size_of::<CloneArgs>(),
        )
    };
    match pid {
        // SAFETY: _exit in the child, which must not run the parent's cleanup.
        0 => unsafe { libc::_exit(0) },
        pid if pid < 0 => Err(Errno::last()),
        pid => {
            let pid = Pid::from_raw(i32::try_from(pid).expect("pid"));
            nix::sys::wait::waitpid(pid, None).map(|_| String::new())
        }
    }
}

/// Sends signal `number` to process `pid`.
fn signal(pid: &str, number: &str) -> Outcome {
    let pid: i32 = pid.parse().expect("a pid");
    let number: i32 = number.parse().expect("a signal number");
    // SAFETY: kill(2) with plain integers.
    Errno::result(unsafe { libc::kill(pid, number) }).map(|_| String::new())
}

/// Creates a small BPF array map (the first step of any BPF tampering).
fn bpf_map_create() -> Outcome {
    /// The leading fields of `union bpf_attr` for `BPF_MAP_CREATE`.
    #[repr(C)]
    struct MapCreate {
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    }
    let attr = MapCreate {
        map_type: 2, // BPF_MAP_TYPE_ARRAY
        key_size: 4,
        value_size: 4,
        max_entries: 1,
    };
    // SAFETY: bpf(BPF_MAP_CREATE) reads `size` bytes of a valid attribute struct.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            0, // BPF_MAP_CREATE
            &raw const attr,
            size_of::<MapCreate>(),
        )
    };
    let fd = Errno::result(fd)?;
    // SAFETY: the descriptor was just created here.
    unsafe { libc::close(i32::try_from(fd).expect("a descriptor")) };
    Ok(String::new())
}

/// Tries to open `path` `times` times as fast as it can; reports how many opens were refused
/// with EPERM (`ok D of N`): a flood of denials.
fn flood_open(path: &str, times: u64) -> String {
    let path = CString::new(path).expect("no NUL in the path");
    let mut denied = 0_u64;
    for _ in 0..times {
        // SAFETY: a plain open of a NUL-terminated path; the descriptor is closed below.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd >= 0 {
            // SAFETY: the descriptor was just opened by this loop.
            unsafe { libc::close(fd) };
        } else if Errno::last() == Errno::EPERM {
            denied += 1;
        }
    }
    format!("{denied} of {times}")
}

/// Opens and reads `path` from `threads` threads released at the same moment; reports how many
/// succeeded (`ok N of M`), which is what a single-use grant must hold to one.
fn race_read(path: &str, threads: usize) -> String {
    let start = std::sync::Arc::new(std::sync::Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let start = std::sync::Arc::clone(&start);
            let path = path.to_owned();
            std::thread::spawn(move || {
                start.wait();
                read_path(&path).is_ok()
            })
        })
        .collect();
    let succeeded = handles
        .into_iter()
        .map(|handle| handle.join().expect("reader thread"))
        .filter(|ok| *ok)
        .count();
    format!("{succeeded} of {threads}")
}

fn read_path(path: &str) -> Outcome {
    let mut file = File::open(path).map_err(|error| io_errno(&error))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|error| io_errno(&error))?;
    Ok(format!("{} bytes", bytes.len()))
}

/// Reads every path in turn (one process, many cases): `PATH=ok` or `PATH=ERRNO` for each,
/// separated by `|`.
fn read_each(paths: &[String]) -> String {
    paths
        .iter()
        .map(|path| match read_path(path) {
            Ok(_) => format!("{path}=ok"),
            Err(errno) => format!("{path}={}", errno as i32),
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// Reads through a descriptor this process did not open itself.
fn read_fd(fd: RawFd) -> Outcome {
    let mut buf = [0u8; 64];
    let read = nix::unistd::read(borrow(fd), &mut buf)?;
    Ok(format!("{read} bytes"))
}

fn borrow(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: the descriptor stays open for the life of this one-shot process.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// Connects to a Unix socket and receives one descriptor (SCM_RIGHTS).
pub fn recv_fd(socket: &str) -> Result<RawFd, Errno> {
    let stream = UnixStream::connect(socket).map_err(|error| io_errno(&error))?;
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!(RawFd);
    let message = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )?;
    for control in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = control
            && let Some(&fd) = fds.first()
        {
            return Ok(fd);
        }
    }
    Err(Errno::ENOMSG)
}

fn mmap_fd(fd: RawFd) -> Outcome {
    // SAFETY: a fresh read-only private mapping that nothing else references.
    let mapping = unsafe {
        mmap(
            None,
            std::num::NonZeroUsize::new(4096).expect("nonzero"),
            ProtFlags::PROT_READ,
            MapFlags::MAP_PRIVATE,
            borrow(fd),
            0,
        )
    }?;
    // SAFETY: the mapping is 4096 readable bytes.
    let first = unsafe { *mapping.cast::<u8>().as_ptr() };
    Ok(format!("first byte {first}"))
}

fn sendfile_fd(fd: RawFd) -> Outcome {
    let sink = File::create("/dev/null").map_err(|error| io_errno(&error))?;
    // SAFETY: both descriptors are open; a null offset uses the file position.
    let sent =
        Errno::result(unsafe { libc::sendfile(sink.as_raw_fd(), fd, std::ptr::null_mut(), 64) })?;
    Ok(format!("{sent} bytes"))
}

/// Reads through Linux AIO (`io_submit`).
fn aio_read_fd(fd: RawFd) -> Outcome {
    #[repr(C)]
    #[derive(Default)]
    struct Iocb {
        data: u64,
        key: u32,
        rw_flags: i32,
        opcode: u16,
        reqprio: i16,
        fildes: u32,
        buf: u64,
        nbytes: u64,
        offset: i64,
        reserved: u64,
        flags: u32,
        resfd: u32,
    }
    #[repr(C)]
    #[derive(Default)]
    struct IoEvent {
        data: u64,
        obj: u64,
        res: i64,
        res2: i64,
    }
    const IOCB_CMD_PREAD: u16 = 0;
    let mut context: libc::c_ulong = 0;
    // SAFETY: raw AIO syscalls with valid pointers to local values.
    unsafe {
        Errno::result(libc::syscall(libc::SYS_io_setup, 1, &raw mut context))?;
        let mut buf = [0u8; 64];
        let mut iocb = Iocb {
            opcode: IOCB_CMD_PREAD,
            fildes: u32::try_from(fd).expect("fd"),
            buf: buf.as_mut_ptr() as u64,
            nbytes: 64,
            ..Iocb::default()
        };
        let mut list = [&raw mut iocb];
        Errno::result(libc::syscall(
            libc::SYS_io_submit,
            context,
            1,
            list.as_mut_ptr(),
        ))?;
        let mut event = IoEvent::default();
        Errno::result(libc::syscall(
            libc::SYS_io_getevents,
            context,
            1,
            1,
            &raw mut event,
            std::ptr::null::<libc::timespec>(),
        ))?;
        if event.res < 0 {
            return Err(Errno::from_raw(i32::try_from(-event.res).unwrap_or(0)));
        }
        Ok(format!("{} bytes", event.res))
    }
}

/// Reads through io_uring from an existing descriptor.
fn uring_read_fd(fd: RawFd) -> Outcome {
    let mut buf = [0u8; 64];
    let entry = io_uring::opcode::Read::new(io_uring::types::Fd(fd), buf.as_mut_ptr(), 64).build();
    uring_one(&entry).map(|read| format!("{read} bytes"))
}

/// Opens with io_uring, then reads with io_uring.
fn uring_open_read(path: &str) -> Outcome {
    let path = CString::new(path).expect("no NUL");
    let open = io_uring::opcode::OpenAt::new(io_uring::types::Fd(libc::AT_FDCWD), path.as_ptr())
        .flags(libc::O_RDONLY)
        .build();
    let fd = uring_one(&open)?;
    // SAFETY: the kernel just returned this descriptor to us.
    let owned = unsafe { OwnedFd::from_raw_fd(i32::try_from(fd).expect("fd")) };
    uring_read_fd(owned.as_raw_fd())
}

fn uring_one(entry: &io_uring::squeue::Entry) -> Result<u32, Errno> {
    let mut ring = io_uring::IoUring::new(4).map_err(|error| io_errno(&error))?;
    // SAFETY: the entry's buffers outlive the submission (we wait for its completion).
    unsafe { ring.submission().push(entry) }.map_err(|_| Errno::EBUSY)?;
    ring.submit_and_wait(1).map_err(|error| io_errno(&error))?;
    let completion = ring.completion().next().ok_or(Errno::EIO)?;
    let result = completion.result();
    if result < 0 {
        return Err(Errno::from_raw(-result));
    }
    Ok(u32::try_from(result).expect("non-negative"))
}

/// Reads every regular file below `root`; fails with the first errno seen, naming the file.
fn walk(root: &Path) -> Outcome {
    let mut pending = vec![root.to_owned()];
    let mut files = 0;
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|error| io_errno(&error))?;
        for entry in entries.filter_map(Result::ok) {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                if let Err(errno) = read_path(entry.path().to_str().expect("utf-8 path")) {
                    eprintln!("kya-probe: {}: {errno}", entry.path().display());
                    return Err(errno);
                }
                files += 1;
            }
        }
    }
    Ok(format!("{files} files"))
}

fn target(pid: &str) -> Pid {
    Pid::from_raw(pid.parse().expect("a pid"))
}

/// Opens `/proc/PID/mem` and reads at the target's stack.
fn read_mem(pid: &str) -> Outcome {
    let mut file = File::open(format!("/proc/{pid}/mem")).map_err(|error| io_errno(&error))?;
    let mut buf = [0u8; 8];
    // The open is what the kernel checks; a read at offset 0 (unmapped) would fail anyway.
    let _ = file.read(&mut buf);
    Ok("opened".to_owned())
}

/// Reads another process's memory. The address is one no process maps, so an access the kernel
/// grants ends in EFAULT, reported as success: what is tested is the access check, which the
/// kernel makes first.
fn vm_readv(pid: &str) -> Outcome {
    const UNMAPPED: usize = 0x1000;
    let mut buf = [0u8; 8];
    match process_vm_readv(
        target(pid),
        &mut [std::io::IoSliceMut::new(&mut buf)],
        &[RemoteIoVec {
            base: UNMAPPED,
            len: 8,
        }],
    ) {
        Ok(read) => Ok(format!("{read} bytes")),
        Err(Errno::EFAULT) => Ok("access granted".to_owned()),
        Err(errno) => Err(errno),
    }
}

fn ptrace_attach(pid: &str) -> Outcome {
    // The access check happens at attach. A seized tracee that is running cannot be detached
    // (ESRCH); it is released when this process exits a moment later.
    ptrace::seize(target(pid), ptrace::Options::empty())?;
    let _ = ptrace::detach(target(pid), None);
    Ok("attached".to_owned())
}
