use super::every_task_hook;
use crate::{decision::ALLOW, keys::forget_key};

every_task_hook! {
    /// `key_free(key)`: forgets an agent's key whose `struct key` is being freed (by the key
    /// garbage collector, untagged), so the address can carry a key of someone else. Costs
    /// every other key one lookup without a lock. The hook returns nothing; it decides nothing.
    #[lsm(hook = "key_free")]
    fn key_free(ctx: LsmContext) -> i32 {
        let key: *const u8 = ctx.arg(0);
        forget_key(key as u64);
        ALLOW
    }
}
