//! One-shot mount operations (`mount`, `umount2`, `open_tree` + `move_mount`, `pivot_root`),
//! alone or inside a new mount namespace (and user namespace), each printing `result ok` or
//! `result errno N` for the first step that failed.
use std::{
    ffi::CString,
    os::fd::{FromRawFd as _, OwnedFd},
};

use nix::{
    errno::Errno,
    mount::{MntFlags, MsFlags, mount, umount2},
    sched::{CloneFlags, unshare},
    unistd::{Gid, Uid, pivot_root, setgid, setuid},
};

type Outcome = Result<String, Errno>;

/// `open_tree` flag: a detached copy of the tree instead of a reference to it.
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// `move_mount` flag: the source is the descriptor itself.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

/// Runs mount operation `name` with `args`; `None` when there is no such operation.
pub fn run(name: &str, args: &[String]) -> Option<Outcome> {
    let arg = |index: usize| args.get(index).map_or("", String::as_str);
    let rest = || args.get(1..).unwrap_or_default();
    Some(match name {
        "mount-tmpfs" => done(mount(
            Some("kya-test"),
            arg(0),
            Some("tmpfs"),
            MsFlags::empty(),
            None::<&str>,
        )),
        "bind-mount" => done(mount(
            Some(arg(0)),
            arg(1),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )),
        "move-mount-legacy" => done(mount(
            Some(arg(0)),
            arg(1),
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )),
        // A superblock remount: new options for the filesystem wherever it is mounted.
        "remount" => done(mount(
            None::<&str>,
            arg(0),
            None::<&str>,
            MsFlags::MS_REMOUNT,
            None::<&str>,
        )),
        // One mount's flags.
        "remount-bind-ro" => done(mount(
            None::<&str>,
            arg(0),
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
            None::<&str>,
        )),
        "make-private" => propagation(arg(0), MsFlags::MS_PRIVATE),
        "make-shared" => propagation(arg(0), MsFlags::MS_SHARED),
        "umount" => done(umount2(arg(0), MntFlags::empty())),
        "umount-detach" => done(umount2(arg(0), MntFlags::MNT_DETACH)),
        "open-tree-attach" => open_tree_attach(arg(0), arg(1)),
        "pivot-root" => done(pivot_root(arg(0), arg(1))),
        // Mounts a tmpfs on DIR, writes and reads a file in it and unmounts it: a sandbox.
        "sandbox" => sandbox(arg(0)),
        // `unshare-mount private|as-is OP ARGS...`: OP in a new mount namespace, with every
        // mount made private first (as `unshare -m` does) or left as copied.
        "unshare-mount" => in_mount_namespace(arg(0) == "private", rest()),
        // `unshare-user-mount OP ARGS...`: OP in a new user and mount namespace, mapped to
        // root in it (`unshare -Urm`).
        "unshare-user-mount" => in_user_namespace(args),
        // `setns-mount FD OP ARGS...`: OP in the mount namespace open as descriptor FD.
        "setns-mount" => in_namespace_of(arg(0), rest()),
        // `as-uid UID OP ARGS...`: OP after changing uid and gid to UID.
        "as-uid" => as_uid(arg(0), rest()),
        _ => return None,
    })
}

fn done<T>(result: Result<T, Errno>) -> Outcome {
    result.map(|_| String::new())
}

fn propagation(target: &str, flag: MsFlags) -> Outcome {
    done(mount(
        None::<&str>,
        target,
        None::<&str>,
        flag | MsFlags::MS_REC,
        None::<&str>,
    ))
}

/// Another operation of this module, or an error if there is none.
fn nested(args: &[String]) -> Outcome {
    let (name, rest) = args.split_first().expect("an operation to run");
    run(name, rest).unwrap_or_else(|| panic!("no mount operation {name}"))
}

fn in_mount_namespace(private: bool, args: &[String]) -> Outcome {
    unshare(CloneFlags::CLONE_NEWNS)?;
    if private {
        propagation("/", MsFlags::MS_PRIVATE)?;
    }
    nested(args)
}

fn in_user_namespace(args: &[String]) -> Outcome {
    let (uid, gid) = (Uid::current(), Gid::current());
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)?;
    let write = |path: &str, text: String| {
        std::fs::write(path, text)
            .map_err(|error| Errno::from_raw(error.raw_os_error().unwrap_or(0)))
    };
    write("/proc/self/setgroups", "deny".to_owned())?;
    write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    nested(args)
}

fn in_namespace_of(fd: &str, args: &[String]) -> Outcome {
    // SAFETY: the test passes the descriptor open, and nothing else in this process owns it.
    let namespace = unsafe { OwnedFd::from_raw_fd(fd.parse().expect("a descriptor")) };
    nix::sched::setns(namespace, CloneFlags::CLONE_NEWNS)?;
    nested(args)
}

fn as_uid(uid: &str, args: &[String]) -> Outcome {
    let id: u32 = uid.parse().expect("a uid");
    setgid(Gid::from_raw(id))?;
    setuid(Uid::from_raw(id))?;
    // A uid change leaves the process undumpable, its /proc files root's: writing its own
    // uid_map would then be refused (EACCES), as it is not for a user's shell.
    nix::sys::prctl::set_dumpable(true)?;
    nested(args)
}

fn open_tree_attach(source: &str, target: &str) -> Outcome {
    let source = CString::new(source).expect("a path");
    let target = CString::new(target).expect("a path");
    // SAFETY: plain system calls on NUL-terminated strings; the descriptor is owned below.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            source.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if tree < 0 {
        return Err(Errno::last());
    }
    // SAFETY: open_tree returned a new descriptor that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(i32::try_from(tree).expect("a descriptor")) };
    let empty = CString::default();
    // SAFETY: as above.
    let moved = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            std::os::fd::AsRawFd::as_raw_fd(&tree),
            empty.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if moved < 0 {
        return Err(Errno::last());
    }
    Ok(String::new())
}

fn sandbox(dir: &str) -> Outcome {
    let io = |error: std::io::Error| Errno::from_raw(error.raw_os_error().unwrap_or(0));
    mount(
        Some("kya-sandbox"),
        dir,
        Some("tmpfs"),
        MsFlags::empty(),
        None::<&str>,
    )?;
    let file = format!("{dir}/inside");
    std::fs::write(&file, b"sandboxed").map_err(io)?;
    let back = std::fs::read(&file).map_err(io)?;
    if back != b"sandboxed" {
        return Err(Errno::EIO);
    }
    umount2(dir, MntFlags::empty())?;
    Ok("sandbox".to_owned())
}
