use super::agent_hook;
use crate::keys::record_key;

agent_hook! {
    /// `key_alloc(key, cred, flags)`: a key (or keyring) is being made by an agent's task:
    /// `add_key(2)`, `request_key(2)` (the key the request-key helper will fill in), a session
    /// keyring the agent joins or the kernel makes for it. The key is recorded as the agent's,
    /// which `key_permission` lets the agent's processes use.
    ///
    /// Refuses (fail closed, with `-EDQUOT` and `tag_error::KEY_INSERT` counted) a key that
    /// cannot be recorded: it would be refused to its own agent. Untagged tasks leave after
    /// the tag lookup.
    #[lsm(hook = "key_alloc")]
    fn key_alloc(ctx: LsmContext, tag: TaskTag) -> i32 {
        let key: *const u8 = ctx.arg(0);
        record_key(tag, key as u64)
    }
}
