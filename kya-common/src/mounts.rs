//! Mount operations an agent may make only inside a mount namespace it made for itself, as both
//! sides name them: the operation a `DenyKind::Mount` event's `detail` carries, and the map of
//! the mount namespaces agents made.

/// Mount namespaces agents made (`unshare(CLONE_NEWNS)`, `clone(CLONE_NEWNS)`), keyed by the
/// namespace's sequence number (`mnt_namespace.seq`, never reused while the kernel runs), with
/// the agent that made it.
pub const OWN_MOUNT_NAMESPACES: &str = "OWN_MOUNT_NAMESPACES";
/// Mount namespaces remembered at once; the least recently used is forgotten first (its agent's
/// mount operations in it are then refused, never allowed).
pub const MAX_OWN_MOUNT_NAMESPACES: u32 = 4_096;

/// `CLONE_NEWNS`: the flag of `unshare(2)` and `clone(2)` that makes a new mount namespace.
pub const CLONE_NEWNS: u64 = 0x0002_0000;

/// Flags of `mount(2)` that say which operation it is (`include/uapi/linux/mount.h`).
pub mod flags {
    pub const MS_REMOUNT: u64 = 32;
    pub const MS_BIND: u64 = 4_096;
    pub const MS_MOVE: u64 = 8_192;
    pub const MS_UNBINDABLE: u64 = 1 << 17;
    pub const MS_PRIVATE: u64 = 1 << 18;
    pub const MS_SLAVE: u64 = 1 << 19;
    pub const MS_SHARED: u64 = 1 << 20;
    /// Any propagation change.
    pub const MS_PROPAGATION: u64 = MS_UNBINDABLE | MS_PRIVATE | MS_SLAVE | MS_SHARED;
}

/// `MNT_SHARED` in `vfsmount.mnt_flags` (the same in 6.1 and 6.12): the mount has peers, in
/// this namespace or others, that every mount and unmount below it propagates to.
pub const MNT_SHARED: u32 = 0x1000;

/// The operation of a refused mount, in a `DenyKind::Mount` event's `detail`.
pub mod op {
    /// `mount(2)` of a new filesystem.
    pub const NEW: u32 = 1;
    /// `mount(2)` with `MS_BIND`: a bind mount.
    pub const BIND: u32 = 2;
    /// `mount(2)` with `MS_REMOUNT`: new flags or options for a mount or its filesystem.
    pub const REMOUNT: u32 = 3;
    /// `mount(2)` with `MS_MOVE`.
    pub const MOVE: u32 = 4;
    /// `mount(2)` changing propagation (`MS_SHARED`, `MS_PRIVATE`, `MS_SLAVE`,
    /// `MS_UNBINDABLE`).
    pub const PROPAGATION: u32 = 5;
    /// `umount(2)` / `umount2(2)`.
    pub const UNMOUNT: u32 = 6;
    /// `move_mount(2)`: attaching a detached tree (`open_tree`, `fsmount`) or moving a mount.
    pub const MOVE_MOUNT: u32 = 7;
    /// `pivot_root(2)`.
    pub const PIVOT_ROOT: u32 = 8;
}

/// The operation `mount(2)` performs with `flags`, as [`op`] names it (the kernel's own order:
/// a remount first, then a bind, a propagation change, a move, else a new mount).
#[must_use]
pub const fn mount_op(flags: u64) -> u32 {
    if flags & flags::MS_REMOUNT != 0 {
        op::REMOUNT
    } else if flags & flags::MS_BIND != 0 {
        op::BIND
    } else if flags & flags::MS_PROPAGATION != 0 {
        op::PROPAGATION
    } else if flags & flags::MS_MOVE != 0 {
        op::MOVE
    } else {
        op::NEW
    }
}

/// A name for the operation `op` (what `kya events` shows).
#[must_use]
pub const fn op_name(op: u32) -> &'static str {
    match op {
        op::NEW => "mount",
        op::BIND => "bind mount",
        op::REMOUNT => "remount",
        op::MOVE => "mount move",
        op::PROPAGATION => "propagation change",
        op::UNMOUNT => "unmount",
        op::MOVE_MOUNT => "move_mount",
        op::PIVOT_ROOT => "pivot_root",
        _ => "mount operation",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_flags_name_the_operation_the_kernel_performs() {
        assert_eq!(mount_op(0), op::NEW);
        assert_eq!(mount_op(flags::MS_BIND | 16_384), op::BIND);
        assert_eq!(
            mount_op(flags::MS_REMOUNT | flags::MS_BIND | 1),
            op::REMOUNT
        );
        assert_eq!(mount_op(flags::MS_PRIVATE | 16_384), op::PROPAGATION);
        assert_eq!(mount_op(flags::MS_MOVE), op::MOVE);
        assert_eq!(op_name(op::UNMOUNT), "unmount");
    }
}
