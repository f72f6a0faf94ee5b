use super::every_task_hook;
use crate::{decision::ALLOW, maps::TASK_TAGS};

every_task_hook! {
    /// `task_free(task)`: forgets the tag of a task whose `task_struct` is being freed, so the
    /// address can carry a new task. The hook returns nothing (there is no earlier verdict to
    /// pass on); it decides nothing.
    #[lsm(hook = "task_free")]
    fn task_free(ctx: LsmContext) -> i32 {
        let task: *const u8 = ctx.arg(0);
        // Most tasks were never tagged: a failed removal is the common, harmless case.
        let _ = TASK_TAGS.remove(&(task as u64));
        ALLOW
    }
}
