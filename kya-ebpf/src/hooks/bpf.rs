use kya_common::event::{DenyKind, MatchedBy};

use super::agent_hook;
use crate::protect::{Denial, Object, refuse};

agent_hook! {
    /// `bpf(cmd, attr, size, ...)`: every `bpf(2)` call. Agents may not make any: with it a root
    /// agent could detach kya's programs, rewrite its maps (its tags, rules and grants) or load
    /// programs of its own.
    ///
    /// Only the tag is read, not the arguments, whose number differs between kernels; for the
    /// same reason the verdict of an earlier BPF program on this hook is not consulted (kya
    /// attaches no other; `LSM_HOOKS` gives the hook no argument count). Denies with EPERM and
    /// an event.
    #[lsm(hook = "bpf")]
    fn bpf(ctx: LsmContext, tag: TaskTag) -> i32 {
        refuse(
            DenyKind::Bpf,
            tag,
            Denial::without_rule(MatchedBy::SelfProtection),
            &Object::empty(),
        )
    }
}
