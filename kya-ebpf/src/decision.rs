//! Return values of LSM hooks.

/// Let the operation proceed.
pub const ALLOW: i32 = 0;
/// Refuse the operation: the caller sees EPERM.
pub const DENY: i32 = -1;
