use super::agent_hook;
use crate::terminals::guard_ioctl;

agent_hook! {
    /// `file_ioctl(file, cmd, arg)`: an ioctl of a 64-bit process (and, on kernels without
    /// `file_ioctl_compat`, of a 32-bit one). An agent may not push input into a terminal
    /// (`TIOCSTI`, `TIOCLINUX`; `kya_common::terminal`), on any file: what it typed would be
    /// run by the terminal's reader, untagged.
    ///
    /// Denies with EPERM and an event; decides from the command alone, so no kernel read can
    /// fail (reading the terminal's name for the event may, which loses only the name).
    #[lsm(hook = "file_ioctl")]
    fn file_ioctl(ctx: LsmContext, tag: TaskTag) -> i32 {
        let file: u64 = ctx.arg(0);
        // `unsigned int`: the slot's upper half is not the command's.
        let cmd: u64 = ctx.arg(1);
        #[expect(clippy::cast_possible_truncation, reason = "the command is 32 bits")]
        let cmd = cmd as u32;
        guard_ioctl(tag, file, cmd)
    }
}
