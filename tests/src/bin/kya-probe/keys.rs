//! Kernel keys, through the system calls themselves (`add_key`, `keyctl`, `request_key`): each
//! operation reports what the kernel answered. A keyring is named as `keyctl` names it: `@u`
//! (the user keyring), `@s` (the session keyring, made on first use), `@us` (the user session
//! keyring), `@p` (the caller's persistent keyring, `KEYCTL_GET_PERSISTENT`), or a serial.
use std::ffi::CString;

use nix::errno::Errno;

type Outcome = Result<String, Errno>;

/// Special keyring ids and `keyctl` operations (`linux/keyctl.h`).
const KEY_SPEC_PROCESS_KEYRING: i64 = -2;
const KEY_SPEC_SESSION_KEYRING: i64 = -3;
const KEY_SPEC_USER_KEYRING: i64 = -4;
const KEY_SPEC_USER_SESSION_KEYRING: i64 = -5;
const KEYCTL_UPDATE: i64 = 2;
const KEYCTL_SETPERM: i64 = 5;
const KEYCTL_DESCRIBE: i64 = 6;
const KEYCTL_SEARCH: i64 = 10;
const KEYCTL_READ: i64 = 11;
const KEYCTL_INVALIDATE: i64 = 21;
const KEYCTL_GET_PERSISTENT: i64 = 22;

/// Runs key operation `name` with `args`; `None` when there is no such operation.
pub fn run(name: &str, args: &[String]) -> Option<Outcome> {
    let arg = |index: usize| args.get(index).map_or("", String::as_str);
    Some(match name {
        // `add-key RING DESC PAYLOAD`: adds (or updates) the `user` key DESC in RING; prints
        // its serial.
        "add-key" => keyring(arg(0)).and_then(|ring| add_key(ring, arg(1), arg(2))),
        // `read-key SERIAL [RING]`: reads a key's payload (`KEYCTL_READ`); prints it. RING is
        // opened first: `@p` links the persistent keyring into the process keyring, which
        // makes its keys the caller's to possess (without possession only their owner's
        // permissions, which do not include reading, apply).
        "read-key" => opened(arg(1)).and_then(|()| read_key(number(arg(0)))),
        // `describe-key SERIAL`: prints a key's description (`KEYCTL_DESCRIBE`).
        "describe-key" => describe_key(number(arg(0))),
        // `search-key RING DESC`: looks for the `user` key DESC in RING and the keyrings linked
        // from it (`KEYCTL_SEARCH`); prints its serial.
        "search-key" => keyring(arg(0)).and_then(|ring| search_key(ring, arg(1))),
        // `request-key DESC`: looks for the `user` key DESC in the caller's keyrings
        // (`request_key` without callout: nothing is constructed); prints its serial.
        "request-key" => request_key(arg(0)),
        // `setperm-key SERIAL PERM [RING]`: sets a key's permissions (PERM in hex, as `keyctl
        // setperm` takes them: possessor, user, group, other bytes). RING as for `read-key`.
        "setperm-key" => opened(arg(2))
            .and_then(|()| {
                i64::from_str_radix(arg(1).trim_start_matches("0x"), 16).map_err(|_| Errno::EINVAL)
            })
            .and_then(|perm| keyctl(KEYCTL_SETPERM, number(arg(0)), perm, 0, 0))
            .map(|_| String::new()),
        // `update-key SERIAL PAYLOAD [RING]`: replaces a key's payload (`KEYCTL_UPDATE`). RING
        // as for `read-key`.
        "update-key" => opened(arg(2)).and_then(|()| update_key(number(arg(0)), arg(1))),
        // `invalidate-key SERIAL`: invalidates a key; the kernel unlinks and frees it soon.
        "invalidate-key" => {
            keyctl(KEYCTL_INVALIDATE, number(arg(0)), 0, 0, 0).map(|_| String::new())
        }
        // `own-key RING DESC PAYLOAD`: in one process, adds the `user` key DESC to RING, then
        // reads it, searches RING for it and requests it; prints `SERIAL PAYLOAD` when every
        // step found that very key, else the errno of the first step that failed (ENOKEY
        // when a lookup found another key).
        "own-key" => keyring(arg(0)).and_then(|ring| own_key(ring, arg(1), arg(2))),
        _ => return None,
    })
}

fn number(text: &str) -> i64 {
    text.parse().unwrap_or(0)
}

/// A buffer's length as a system call argument.
fn len(bytes: usize) -> i64 {
    i64::try_from(bytes).expect("a small buffer")
}

fn c_string(text: &str) -> CString {
    CString::new(text).expect("no NUL in key arguments")
}

fn keyctl(op: i64, a: i64, b: i64, c: i64, d: i64) -> Result<i64, Errno> {
    // SAFETY: every pointer argument the callers pass points at a live buffer or string.
    let answer = unsafe { libc::syscall(libc::SYS_keyctl, op, a, b, c, d) };
    if answer < 0 {
        Err(Errno::last())
    } else {
        Ok(answer)
    }
}

fn keyring(name: &str) -> Result<i64, Errno> {
    Ok(match name {
        "@s" => KEY_SPEC_SESSION_KEYRING,
        "@u" => KEY_SPEC_USER_KEYRING,
        "@us" => KEY_SPEC_USER_SESSION_KEYRING,
        // The caller's own (-1) persistent keyring, linked into its process keyring.
        "@p" => keyctl(KEYCTL_GET_PERSISTENT, -1, KEY_SPEC_PROCESS_KEYRING, 0, 0)?,
        serial => number(serial),
    })
}

/// Opens `ring` first when one is given (see `read-key`).
fn opened(ring: &str) -> Result<(), Errno> {
    if !ring.is_empty() {
        keyring(ring)?;
    }
    Ok(())
}

fn add_key(ring: i64, description: &str, payload: &str) -> Outcome {
    let (key_type, description) = (c_string("user"), c_string(description));
    // SAFETY: the strings and the payload outlive the call.
    let serial = unsafe {
        libc::syscall(
            libc::SYS_add_key,
            key_type.as_ptr(),
            description.as_ptr(),
            payload.as_ptr(),
            payload.len(),
            ring,
        )
    };
    if serial < 0 {
        Err(Errno::last())
    } else {
        Ok(serial.to_string())
    }
}

fn read_key(serial: i64) -> Outcome {
    let mut buffer = vec![0_u8; 4_096];
    let length = keyctl(
        KEYCTL_READ,
        serial,
        buffer.as_mut_ptr() as i64,
        len(buffer.len()),
        0,
    )?;
    buffer.truncate(usize::try_from(length).unwrap_or(0).min(4_096));
    Ok(String::from_utf8_lossy(&buffer).into_owned())
}

fn describe_key(serial: i64) -> Outcome {
    let mut buffer = vec![0_u8; 4_096];
    let length = keyctl(
        KEYCTL_DESCRIBE,
        serial,
        buffer.as_mut_ptr() as i64,
        len(buffer.len()),
        0,
    )?;
    // The description comes NUL-terminated.
    buffer.truncate(
        usize::try_from(length)
            .unwrap_or(1)
            .saturating_sub(1)
            .min(4_096),
    );
    Ok(String::from_utf8_lossy(&buffer).into_owned())
}

fn search_key(ring: i64, description: &str) -> Outcome {
    let (key_type, description) = (c_string("user"), c_string(description));
    keyctl(
        KEYCTL_SEARCH,
        ring,
        key_type.as_ptr() as i64,
        description.as_ptr() as i64,
        0,
    )
    .map(|serial| serial.to_string())
}

fn request_key(description: &str) -> Outcome {
    let (key_type, description) = (c_string("user"), c_string(description));
    // SAFETY: the strings outlive the call; no callout, no destination keyring.
    let serial = unsafe {
        libc::syscall(
            libc::SYS_request_key,
            key_type.as_ptr(),
            description.as_ptr(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    };
    if serial < 0 {
        Err(Errno::last())
    } else {
        Ok(serial.to_string())
    }
}

fn update_key(serial: i64, payload: &str) -> Outcome {
    keyctl(
        KEYCTL_UPDATE,
        serial,
        payload.as_ptr() as i64,
        len(payload.len()),
        0,
    )
    .map(|_| String::new())
}

fn own_key(ring: i64, description: &str, payload: &str) -> Outcome {
    let serial = add_key(ring, description, payload)?;
    if read_key(number(&serial))? != payload {
        return Err(Errno::ENOKEY);
    }
    if search_key(ring, description)? != serial || request_key(description)? != serial {
        return Err(Errno::ENOKEY);
    }
    Ok(format!("{serial} {payload}"))
}
