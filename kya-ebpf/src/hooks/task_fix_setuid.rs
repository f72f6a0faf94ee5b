use aya_ebpf::programs::LsmContext;
use kya_common::maps::tag_error;

use super::every_task_hook;
use crate::{
    decision::{ALLOW, DENY},
    kernel,
    maps::count_error,
    tagging::{current_task, has_uid_rules, match_uid, record_new, tag_of},
};

every_task_hook! {
    /// `task_fix_setuid(new, old, flags)`: an untagged task that switches its real or effective
    /// uid to an agent's uid becomes that agent.
    ///
    /// Allows the change, except when the match cannot be recorded: then it is denied (fail
    /// closed). If the new credentials cannot be read while uid rules exist, the change is
    /// denied and the error counted (fail closed: it may be a switch to an agent's uid).
    /// Without uid rules (their count, `MATCH_SUMMARY`, is read first) nothing else is looked
    /// at and the change goes on.
    #[lsm(hook = "task_fix_setuid")]
    fn task_fix_setuid(ctx: LsmContext) -> i32 {
        try_task_fix_setuid(&ctx).unwrap_or(DENY)
    }
}

fn try_task_fix_setuid(ctx: &LsmContext) -> Result<i32, ()> {
    if !has_uid_rules() {
        return Ok(ALLOW);
    }
    let task = current_task();
    if tag_of(task).is_some() {
        return Ok(ALLOW);
    }
    let new: *const u8 = ctx.arg(0);
    let Ok((uid, euid)) = kernel::cred_uids(new as u64) else {
        count_error(tag_error::KERNEL_READ);
        return Ok(DENY);
    };
    let Some(tag) = match_uid(uid).or_else(|| match_uid(euid)) else {
        return Ok(ALLOW);
    };
    record_new(task, &tag).map_err(|_| count_error(tag_error::SETUID_INSERT))?;
    Ok(ALLOW)
}
