use kya_common::event::{DenyKind, MatchedBy, NO_RULE};

use super::agent_hook;
use crate::{
    decision::ALLOW,
    kernel,
    protect::{Denial, Object, refuse},
    tagging::tag_of,
};

agent_hook! {
    /// `task_kill(p, info, sig, cred)`: every signal a process sends (`kill`, `tkill`,
    /// `tgkill`, `rt_sigqueueinfo`, `pidfd_send_signal`). An agent may signal only processes of
    /// its own agent: it cannot stop, kill or otherwise disturb kya-agent, nor anything else on
    /// the host. Signal 0 (an existence check) is allowed. Signals the kernel sends itself
    /// (SIGCHLD, SIGPIPE) do not pass here.
    ///
    /// Denies with EPERM and an event.
    #[lsm(hook = "task_kill")]
    fn task_kill(ctx: LsmContext, tag: TaskTag) -> i32 {
        let signal: i32 = ctx.arg(2);
        if signal == 0 {
            return ALLOW;
        }
        let target: *const u8 = ctx.arg(0);
        let target = target as u64;
        if tag_of(target).is_some_and(|other| other.agent == tag.agent) {
            return ALLOW;
        }
        // The target's pid is only for the event; a failed read leaves it 0.
        let pid = kernel::task_ids(target).map_or(0, |(_, tgid)| tgid);
        refuse(
            DenyKind::Signal,
            tag,
            Denial {
                matched: MatchedBy::OtherProcess,
                rule: NO_RULE,
                level: pid,
                writes_only: false,
                foothold: false,
            },
            &Object::empty(),
        )
    }
}
