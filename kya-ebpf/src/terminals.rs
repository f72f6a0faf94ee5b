//! The terminal input no agent may push (see `kya_common::terminal`): decided from the ioctl
//! command alone, on any file, so no kernel read stands between an agent and the refusal.
use kya_common::{
    event::{DenyKind, MatchedBy},
    tag::TaskTag,
    terminal::refused_ioctl,
};

use crate::{
    decision::{ALLOW, DENY},
    events::report,
    facilities::fill_file,
};

/// The verdict on the ioctl `cmd` on `file` for the agent `tag`: [`DENY`], counted and
/// reported, for the ioctls that push input into a terminal; [`ALLOW`] for every other.
#[inline(always)]
pub fn guard_ioctl(tag: TaskTag, file: u64, cmd: u32) -> i32 {
    if !refused_ioctl(cmd) {
        return ALLOW;
    }
    report(
        DenyKind::Terminal,
        tag,
        MatchedBy::KernelFacility,
        |event| {
            event.detail = cmd;
            // The event names the terminal when it can; the refusal stands either way.
            let _ = fill_file(event, file);
        },
    );
    DENY
}
