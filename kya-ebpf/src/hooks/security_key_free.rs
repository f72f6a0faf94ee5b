use aya_ebpf::{macros::fexit, programs::FExitContext};

use crate::keys::forget_key;

/// `security_key_free(key)` has returned (`fexit`): the key garbage collector is about to free
/// the `struct key`, so an agent's key is forgotten before the address can carry a key of
/// someone else. Runs for every key (the collector is untagged), at the cost of one lookup
/// without a lock for keys no agent made.
///
/// Not the `key_free` LSM hook: 6.12 has none (the LSM infrastructure frees the key's security
/// blob itself since 6.12), while `security_key_free` is called for every freed key on both
/// kernels, and never for a key whose `key_alloc` was refused. It decides nothing.
#[fexit(function = "security_key_free")]
pub fn security_key_free(ctx: FExitContext) -> i32 {
    if cfg!(feature = "floor") {
        return 0;
    }
    let key: u64 = ctx.arg(0);
    forget_key(key);
    0
}
