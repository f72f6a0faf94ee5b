use super::every_task_hook;
use crate::{cgroupfs, decision::ALLOW, tagging};

/// `MAY_WRITE` and `MAY_APPEND` in the mask.
const MAY_WRITE: i32 = 0x2;
const MAY_APPEND: i32 = 0x8;

every_task_hook! {
    /// `inode_permission(inode, mask)`: an agent cannot write on the cgroup filesystem outside
    /// the cgroup subtree it runs in: no control file of another cgroup (kya-agent's, the
    /// root's, a sibling's), no migration of a process out of its subtree or into it from
    /// outside (`cgroup.procs`, `cgroup.threads`, `clone3(CLONE_INTO_CGROUP)`: the kernel checks
    /// write permission on the common ancestor's `cgroup.procs` here), and nothing on a cgroup
    /// v1 hierarchy (see `cgroupfs`). Write-opens pass here too, before `file_open`.
    ///
    /// The hook runs for every step of every path lookup, so the mask is looked at before the
    /// tag: a lookup (`MAY_EXEC`) or a read leaves without a map lookup. Denies with EPERM and
    /// an event; a kernel read error denies too (fail closed).
    #[lsm(hook = "inode_permission")]
    fn inode_permission(ctx: LsmContext) -> i32 {
        let mask: i32 = ctx.arg(1);
        if mask & (MAY_WRITE | MAY_APPEND) == 0 {
            return ALLOW;
        }
        let Some(tag) = tagging::tag_of(tagging::current_task()) else {
            return ALLOW;
        };
        let inode: *const u8 = ctx.arg(0);
        cgroupfs::guard_write(inode as u64, tag)
    }
}
