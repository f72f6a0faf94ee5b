use aya_ebpf::programs::LsmContext;
use kya_common::maps::tag_error;

use super::every_task_hook;
use crate::{
    decision::{ALLOW, DENY},
    kernel,
    maps::count_error,
    tagging::{
        current_task, has_cgroup_rules, has_exe_rules, has_uid_rules, match_current_cgroup,
        match_current_uid, match_exe, record_new, tag_of,
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
    /// an agent's executable); without exe rules it is not read at all.
    ///
    /// Runs for every exec: only the kinds of rule that exist are looked at (their counts,
    /// `MATCH_SUMMARY`, are read first), so with no rule an exec costs no map lookup and no
    /// kernel read.
    #[lsm(hook = "bprm_check_security")]
    fn bprm_check_security(ctx: LsmContext) -> i32 {
        try_bprm_check_security(&ctx).unwrap_or(DENY)
    }
}

fn try_bprm_check_security(ctx: &LsmContext) -> Result<i32, ()> {
    let by_exe = has_exe_rules();
    let by_uid = has_uid_rules();
    let by_cgroup = has_cgroup_rules();
    if !(by_exe || by_uid || by_cgroup) {
        return Ok(ALLOW);
    }
    let task = current_task();
    if tag_of(task).is_some() {
        return Ok(ALLOW);
    }
    let exe_match = if by_exe {
        let bprm: *const u8 = ctx.arg(0);
        let Ok(identity) = kernel::bprm_file_identity(bprm as u64) else {
            count_error(tag_error::KERNEL_READ);
            return Ok(DENY);
        };
        match_exe(&identity)
    } else {
        None
    };
    let Some(tag) = exe_match
        .or_else(|| by_uid.then(match_current_uid).flatten())
        .or_else(|| by_cgroup.then(match_current_cgroup).flatten())
    else {
        return Ok(ALLOW);
    };
    record_new(task, &tag).map_err(|_| count_error(tag_error::EXEC_INSERT))?;
    Ok(ALLOW)
}
