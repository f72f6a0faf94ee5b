//! Terminal input that no agent may push (`DenyKind::Terminal`): the ioctls that put bytes
//! into a terminal's input queue, where whatever reads the terminal (a human's shell, after
//! the agent has exited) takes them for typed keystrokes and runs them, untagged.
//!
//! The numbers are the same for 64-bit processes (`file_ioctl`) and 32-bit ones
//! (`file_ioctl_compat`): `asm-generic/ioctls.h`, which x86 uses for both, defines them
//! without a size or direction, so the compat layer passes them unchanged. They are also
//! `DenyEvent::detail` of a `Terminal` denial.

/// `TIOCSTI`: push one byte into the terminal's input, as if typed.
pub const TIOCSTI: u32 = 0x5412;
/// `TIOCLINUX`: the Linux virtual console's multiplexed ioctl. Its subcode (the first byte
/// the argument points to) selects text (`TIOCL_SETSEL`) or pastes the selection into the
/// console's input (`TIOCL_PASTESEL`), which types it like `TIOCSTI`.
///
/// The whole ioctl is refused to agents, not only those subcodes: the subcode lies in the
/// agent's memory, which the kernel reads after the LSM hook has decided, so another thread of
/// the agent could change a harmless subcode into a paste in between; and a hook that may not
/// sleep cannot fault a page of it in, so a read could fail where the kernel's would not.
/// Agents lose nothing they use: the other subcodes blank or unblank a console, report its
/// shift state or redirect kernel messages, and on the pseudo-terminals agents work in the
/// kernel refuses `TIOCLINUX` (`ENOTTY`) anyway.
pub const TIOCLINUX: u32 = 0x541c;

/// Whether an agent is refused the ioctl `cmd` on any file.
#[must_use]
pub const fn refused_ioctl(cmd: u32) -> bool {
    matches!(cmd, TIOCSTI | TIOCLINUX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_ioctls_are_refused_and_others_are_not() {
        assert!(refused_ioctl(TIOCSTI));
        assert!(refused_ioctl(TIOCLINUX));
        // TCGETS, TIOCGWINSZ, TIOCSWINSZ, FIONREAD, TIOCSCTTY: what shells and editors use.
        for cmd in [0x5401, 0x5413, 0x5414, 0x541b, 0x540e] {
            assert!(!refused_ioctl(cmd), "{cmd:#x}");
        }
    }

    #[test]
    fn the_numbers_are_the_kernels() {
        // `_IO`-less numbers of `asm-generic/ioctls.h`: 'T' << 8 | nr.
        assert_eq!(TIOCSTI, u32::from(b'T') << 8 | 0x12);
        assert_eq!(TIOCLINUX, u32::from(b'T') << 8 | 0x1c);
    }
}
