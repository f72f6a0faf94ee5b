use aya_ebpf::{macros::lsm, programs::LsmContext};
use kya_common::event::{DenyKind, MatchedBy};

use crate::{
    decision::ALLOW,
    protect::{Denial, Object, refuse},
    tagging::{current_task, tag_of},
};

/// `bpf(cmd, attr, size, ...)`: every `bpf(2)` call. Agents may not make any: with it a root
/// agent could detach kya's programs, rewrite its maps (its tags, rules and grants) or load
/// programs of its own.
///
/// Only the tag is read, not the arguments, whose number differs between kernels; for the
/// same reason the verdict of an earlier BPF program on this hook is not consulted (kya
/// attaches no other). Untagged tasks leave after one lookup. Denies with EPERM and an event.
#[lsm(hook = "bpf")]
pub fn bpf(_ctx: LsmContext) -> i32 {
    let Some(tag) = tag_of(current_task()) else {
        return ALLOW;
    };
    refuse(
        DenyKind::Bpf,
        tag,
        Denial::without_rule(MatchedBy::SelfProtection),
        &Object::empty(),
    )
}
