use kya_common::event::{MatchedBy, NO_RULE};

use super::agent_hook;
use crate::{
    decision::ALLOW,
    kernel,
    protect::{Denial, refuse_process},
    tagging::tag_of,
};

agent_hook! {
    /// `ptrace_access_check(child, mode)`: the kernel asks this before `/proc/PID/environ`,
    /// `/proc/PID/mem`, `/proc/PID/fd`, `/proc/PID/root`, `process_vm_readv`, `pidfd_getfd`
    /// and `ptrace` attach. An agent may only reach processes of its own agent.
    ///
    /// Denies with EPERM and an event.
    #[lsm(hook = "ptrace_access_check")]
    fn ptrace_access_check(ctx: LsmContext, tag: TaskTag) -> i32 {
        let child: *const u8 = ctx.arg(0);
        let child = child as u64;
        if tag_of(child).is_some_and(|target| target.agent == tag.agent) {
            return ALLOW;
        }
        // The target's pid is only for the event; a failed read leaves it 0.
        let target = kernel::task_ids(child).map_or(0, |(_, tgid)| tgid);
        refuse_process(
            tag,
            Denial {
                matched: MatchedBy::OtherProcess,
                rule: NO_RULE,
                level: target,
                writes_only: false,
                foothold: false,
            },
        )
    }
}
