use kya_common::event::DenyKind;

use super::agent_hook;
use crate::{facilities, kernel, protect::guard_file};

agent_hook! {
    /// `file_open(file)`: an agent cannot open a file protected from it, whatever path, link,
    /// bind mount or `/proc/PID/root` it comes through (the check is on the object and the
    /// directories above it). Nor can it open raw memory, ports or disks, or `/proc/kcore`, nor
    /// open a sysctl, `/sys/kernel/uevent_helper` or a binfmt_misc file for writing (see
    /// `facilities`), nor the command line of a process that is not its own agent's
    /// (`/proc/PID/cmdline`, see `cmdline`).
    ///
    /// Denies with EPERM and an event; a kernel read error denies too (fail closed).
    #[lsm(hook = "file_open")]
    fn file_open(ctx: LsmContext, tag: TaskTag) -> i32 {
        let file: *const u8 = ctx.arg(0);
        if let Some(verdict) = facilities::guard_cmdline(file as u64, tag, DenyKind::FileOpen) {
            return verdict;
        }
        // A mode that cannot be read counts as writing (fail closed).
        let writing = kernel::typed::file_open_for_writing(file as u64).unwrap_or(true);
        let file = file as u64;
        if let Some(verdict) = facilities::guard_file(file, tag, DenyKind::FileOpen, writing) {
            return verdict;
        }
        guard_file(file, tag, DenyKind::FileOpen, writing, true)
    }
}
