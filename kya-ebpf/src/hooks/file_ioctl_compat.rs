use super::agent_hook;
use crate::terminals::guard_ioctl;

agent_hook! {
    /// `file_ioctl_compat(file, cmd, arg)`: an ioctl of a 32-bit process, on kernels that have
    /// the hook (6.8, and the stable kernels it was brought back to: Debian's 6.1 has it). It
    /// refuses what `file_ioctl` refuses: the terminal ioctls keep their numbers in 32-bit
    /// processes.
    ///
    /// Denies with EPERM and an event; decides from the command alone.
    #[lsm(hook = "file_ioctl_compat")]
    fn file_ioctl_compat(ctx: LsmContext, tag: TaskTag) -> i32 {
        let file: u64 = ctx.arg(0);
        // `unsigned int`: the slot's upper half is not the command's.
        let cmd: u64 = ctx.arg(1);
        #[expect(clippy::cast_possible_truncation, reason = "the command is 32 bits")]
        let cmd = cmd as u32;
        guard_ioctl(tag, file, cmd)
    }
}
