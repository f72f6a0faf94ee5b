//! Kernel keys: an agent reads, finds and replaces only keys its own processes made (see
//! `kya_common::keys` for which permissions, and why keyrings are left alone).
//!
//! The keys agents make are recorded as they are allocated (`key_alloc`, in the creator's context,
//! before the key has a serial number) in `AGENT_KEYS`, by the address of the `struct key`, and
//! forgotten when `security_key_free` returns (an `fexit` program: 6.12 has no `key_free` LSM
//! hook), which the kernel calls for every key it frees (the garbage collector, after the last
//! reference, before the memory is freed) and never for one whose `key_alloc` was refused. No entry
//! outlives its key, so a key later allocated at the same address is never taken for an agent's; a
//! key without an entry is a human's or a service's, refused to every agent. A key made on an
//! agent's `request_key(2)` is allocated in the agent's context and so is the agent's, although the
//! untagged request-key helper gives it its payload: the agent asked for it, and the helper is
//! configured by root to hand it out.
use aya_ebpf::helpers::bpf_probe_read_kernel;
use kya_common::{
    event::{DenyKind, MatchedBy},
    keys::{KEY_MAP_FULL_ERRNO, KEYRING_TYPE_NAME, need},
    maps::tag_error,
    tag::TaskTag,
};

use crate::{
    decision::{ALLOW, DENY},
    events::report,
    kernel::{ReadError, kernel_str, read},
    maps::{AGENT_KEYS, count_error},
};

macro_rules! globals {
    ($($name:ident = $default:expr),* $(,)?) => {
        $(
            #[unsafe(no_mangle)]
            static $name: u32 = $default;
        )*
    };
}

// Set by the loader from BTF where the kernel has keys: field offsets
// (`kya_common::keys::FIELDS`) and the values of `enum key_need_perm`
// (`kya_common::keys::ENUM_VALUES`, compiled in as 6.1's and 6.12's).
globals!(
    KEY_SERIAL_OFFSET = 0,
    KEY_TYPE_OFFSET = 0,
    KEY_DESCRIPTION_OFFSET = 0,
    KEY_TYPE_NAME_OFFSET = 0,
    KEY_NEED_READ = need::KEY_NEED_READ,
    KEY_NEED_WRITE = need::KEY_NEED_WRITE,
    KEY_NEED_SEARCH = need::KEY_NEED_SEARCH,
);

/// The low bit of a `key_ref_t`: whether the caller possesses the key.
const KEY_REF_POSSESSED: u64 = 1;

#[inline(always)]
fn global(value: &'static u32) -> u32 {
    // SAFETY: a plain read of a global; volatile so the compiler keeps the load the loader
    // patches.
    unsafe { core::ptr::read_volatile(value) }
}

/// Records `key`, being allocated by a task of agent `tag`, as that agent's. A key that cannot
/// be recorded is not made: [`ALLOW`] or the `-EDQUOT` that refuses its allocation (counted as
/// `tag_error::KEY_INSERT`).
#[inline(always)]
pub fn record_key(tag: TaskTag, key: u64) -> i32 {
    // The address is free: `security_key_free` removed whatever key used it before.
    match AGENT_KEYS.insert(&key, &tag.agent, 0) {
        Ok(()) => ALLOW,
        Err(_) => {
            count_error(tag_error::KEY_INSERT);
            -KEY_MAP_FULL_ERRNO
        }
    }
}

/// Forgets `key`, being freed. Most keys were never an agent's: the lookup, which takes no
/// lock, spares them the locked delete.
#[inline(always)]
pub fn forget_key(key: u64) {
    // SAFETY: only whether an entry exists is used.
    if unsafe { AGENT_KEYS.get(&key) }.is_some() {
        let _ = AGENT_KEYS.remove(&key);
    }
}

/// The verdict on `need_perm` on a key for agent `tag`: [`DENY`], counted and reported, for
/// reading, finding or replacing a key that is not a keyring and that no process of the agent
/// made; [`ALLOW`] otherwise. `key_ref` reads the hook's `key_ref_t` (only for those three
/// permissions). A key that cannot be read is refused (fail closed).
#[inline(always)]
pub fn guard_key(
    tag: TaskTag,
    need_perm: u32,
    key_ref: impl FnOnce() -> Result<u64, ReadError>,
) -> i32 {
    if need_perm != global(&KEY_NEED_READ)
        && need_perm != global(&KEY_NEED_SEARCH)
        && need_perm != global(&KEY_NEED_WRITE)
    {
        return ALLOW;
    }
    let Ok(key_ref) = key_ref() else {
        report(DenyKind::Keyring, tag, MatchedBy::ReadError, |_| {});
        return DENY;
    };
    let key = key_ref & !KEY_REF_POSSESSED;
    // SAFETY: the value is copied out.
    if unsafe { AGENT_KEYS.get(&key) }.is_some_and(|agent| *agent == tag.agent) {
        return ALLOW;
    }
    let matched = match is_keyring(key) {
        Ok(true) => return ALLOW,
        Ok(false) => MatchedBy::OtherKey,
        Err(ReadError) => MatchedBy::ReadError,
    };
    report(DenyKind::Keyring, tag, matched, |event| {
        // The event names the key when it can; the refusal stands either way.
        #[expect(clippy::cast_sign_loss, reason = "serials are positive")]
        if let Ok(serial) = read::<i32>(key, &KEY_SERIAL_OFFSET) {
            event.detail = serial as u32;
        }
        if let Ok(description) = read::<u64>(key, &KEY_DESCRIPTION_OFFSET) {
            let _ = kernel_str(description, &mut event.name);
        }
    });
    DENY
}

/// Whether `key` is a keyring: its type's name is `keyring`.
#[inline(always)]
fn is_keyring(key: u64) -> Result<bool, ReadError> {
    let key_type: u64 = read(key, &KEY_TYPE_OFFSET)?;
    let name: u64 = read(key_type, &KEY_TYPE_NAME_OFFSET)?;
    if name == 0 {
        return Err(ReadError);
    }
    // Eight bytes, the NUL included: a longer name (`keyrings`) differs in its eighth. A
    // shorter one is read past its end, harmlessly (the helper reports a fault as an error).
    // SAFETY: bpf_probe_read_kernel copes with any address.
    let first: [u8; 8] =
        unsafe { bpf_probe_read_kernel(name as *const [u8; 8]) }.map_err(|_| ReadError)?;
    Ok(first == KEYRING_TYPE_NAME)
}
