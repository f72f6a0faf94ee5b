use aya_ebpf::{EbpfContext as _, helpers::bpf_probe_read_kernel};

use super::agent_hook;
use crate::{kernel::ReadError, keys::guard_key};

agent_hook! {
    /// `key_permission(key_ref, cred, need_perm)`: every use of a key, after the kernel's own
    /// permission check passed. An agent may read (`KEYCTL_READ`, `KEYCTL_DH_COMPUTE`), find
    /// (`KEYCTL_SEARCH`, `request_key(2)`, `KEYCTL_PKEY_*`) and replace (`KEYCTL_UPDATE`,
    /// `add_key(2)` onto an existing key, `KEYCTL_REVOKE`) only keys its own processes made,
    /// and every keyring; describing a key (`KEY_NEED_VIEW`), linking and unlinking stay
    /// allowed. A search skips the keys refused to it.
    ///
    /// Denies with EPERM and an event naming the key (serial, description); a key that cannot
    /// be read is refused too (fail closed). Untagged tasks leave after the tag lookup.
    #[lsm(hook = "key_permission")]
    fn key_permission(ctx: LsmContext, tag: TaskTag) -> i32 {
        let need_perm: u32 = ctx.arg(2);
        guard_key(tag, need_perm, || {
            // `key_ref_t` points at a struct the kernel never defines, and the verifier lets
            // no program load such an argument from its context ("arg0 type FWD is not a
            // struct"); the slot is copied out instead.
            let slot = ctx.as_ptr().cast::<u64>();
            // SAFETY: the helper copes with any address; the slot is the context's first.
            unsafe { bpf_probe_read_kernel(slot) }.map_err(|_| ReadError)
        })
    }
}
