use aya_ebpf::programs::LsmContext;
use kya_common::maps::tag_error;

use super::every_task_hook;
use crate::{
    decision::{ALLOW, DENY},
    kernel,
    maps::count_error,
    tagging::{
        current_task, has_exe_rules, match_current_cgroup, match_current_uid, match_exe,
        record_new, tag_of,
    },
};

every_task_hook! {
    /// `bprm_check_security(bprm)`: an untagged task that executes an agent's executable (by
    /// file identity, so links and other paths to it match too), runs as an agent's uid or
    /// sits in an agent's cgroup subtree becomes that agent before the new program runs.
    ///
    /// Always allows the exec itself, except when a match cannot be recorded: then the exec is
    /// denied (fail closed), since the program would run as an agent without its tag. A tagged
    /// task keeps its tag whatever it executes. If the executable's identity cannot be read
    /// while exe rules exist, the exec is denied and the error counted (fail closed: it may be
    /// an agent's executable); without exe rules nothing depends on it and the exec goes on.
    #[lsm(hook = "bprm_check_security")]
    fn bprm_check_security(ctx: LsmContext) -> i32 {
        try_bprm_check_security(&ctx).unwrap_or(DENY)
    }
}

fn try_bprm_check_security(ctx: &LsmContext) -> Result<i32, ()> {
    let task = current_task();
    if tag_of(task).is_some() {
        return Ok(ALLOW);
    }
    let bprm: *const u8 = ctx.arg(0);
    let by_exe = match kernel::bprm_file_identity(bprm as u64) {
        Ok(identity) => match_exe(&identity),
        Err(kernel::ReadError) => {
            count_error(tag_error::KERNEL_READ);
            if has_exe_rules() {
                return Ok(DENY);
            }
            None
        }
    };
    let Some(tag) = by_exe
        .or_else(match_current_uid)
        .or_else(match_current_cgroup)
    else {
        return Ok(ALLOW);
    };
    record_new(task, &tag).map_err(|_| count_error(tag_error::EXEC_INSERT))?;
    Ok(ALLOW)
}
