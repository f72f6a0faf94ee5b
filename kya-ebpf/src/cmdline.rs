//! Other processes' command lines. Tokens travel as arguments (`curl -H "Authorization: Bearer
//! ..."`, `mysql -pSECRET`, `--token=...`), and `/proc/PID/cmdline` (and
//! `/proc/PID/task/TID/cmdline`) is read without the ptrace check that guards a process's
//! environment and memory (`ptrace_access_check`). An agent reads only the command lines of
//! its own agent's tasks, as it reaches only their environment.
//!
//! Checked with the kernel facilities (`facilities::classify`), on every open and every read
//! through a descriptor of a procfs file named `cmdline` below procfs's root: on any procfs
//! mount and whatever path or directory descriptor led there, since the process is the one the
//! file's inode belongs to, not one named by a path.
use kya_common::tag::TaskTag;

use crate::{
    kernel::{self, ReadError},
    tagging::tag_of,
};

/// The process id to refuse the agent `agent` the command line in the procfs inode `inode`
/// for, `None` when the task it shows is one of the agent's own. A task that is gone (a
/// descriptor held past its process's end) is refused too, by its pid: it is not the agent's,
/// and there is nothing to read anyway.
#[inline(always)]
pub fn refused_for(inode: u64, agent: u32) -> Result<Option<u32>, ReadError> {
    let pid = kernel::proc_inode_pid(inode)?;
    let Some(task) = kernel::pid_task(pid)? else {
        return kernel::pid_nr(pid).map(Some);
    };
    if tag_of(task).is_some_and(|tag: TaskTag| tag.agent == agent) {
        return Ok(None);
    }
    kernel::task_ids(task).map(|(_, tgid)| Some(tgid))
}
