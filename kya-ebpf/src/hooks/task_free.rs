use super::every_task_hook;
use crate::{decision::ALLOW, maps::TASK_TAGS, tagging::tag_of};

every_task_hook! {
    /// `task_free(task)`: forgets the tag of a task whose `task_struct` is being freed, so the
    /// address can carry a new task. The hook returns nothing (there is no earlier verdict to
    /// pass on); it decides nothing.
    ///
    /// Runs at the exit of every task: most were never tagged, and a lookup (no lock) tells so
    /// before the removal takes the bucket's lock. Nothing can tag a task being freed in
    /// between.
    #[lsm(hook = "task_free")]
    fn task_free(ctx: LsmContext) -> i32 {
        let task: *const u8 = ctx.arg(0);
        let task = task as u64;
        if tag_of(task).is_some() {
            let _ = TASK_TAGS.remove(&task);
        }
        ALLOW
    }
}
