//! Whether a user name is a living account, through NSS (`getpwnam_r`, `getspnam_r`), as the
//! login stack decides it: an owner or approver whose account is gone can no longer answer
//! for an agent.
//!
//! An account is gone when it is **missing** (no such user), **locked** (its shadow password
//! field is `!` followed by a password hash, as `passwd -l` and `usermod -L` leave it) or
//! **expired** (`sp_expire` is set and today, in days since the epoch, is on or after it:
//! pam_unix's rule, which `chage -E` and `usermod -e` set). uid 0 is always living. A bare
//! `!`, `!!` or `*` (or `!*`) is an account that never had a password: it is not "locked" by
//! this rule, because locking such an account changes nothing in shadow, so the field cannot
//! tell a locked account from a service account that logs in by key or not at all. A user
//! with no shadow entry (an NSS source without shadow) is decided from passwd alone.
use std::{ffi::CString, fmt};

/// Why an account no longer answers for anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gone {
    /// No such user in the user database.
    Missing,
    /// The password is locked (`passwd -l`, `usermod -L`).
    Locked,
    /// The account expired on this day (days since 1970-01-01).
    Expired { day: i64 },
}

impl Gone {
    /// The metric label: `owner_missing`, `owner_locked` or `owner_expired`.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Missing => "owner_missing",
            Self::Locked => "owner_locked",
            Self::Expired { .. } => "owner_expired",
        }
    }
}

impl fmt::Display for Gone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("no longer exists"),
            Self::Locked => f.write_str("is locked"),
            Self::Expired { day } => write!(
                f,
                "expired on {}",
                crate::dates::date(u64::try_from(*day).unwrap_or(0))
            ),
        }
    }
}

/// What the user database says of a name now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Account {
    Living,
    Gone(Gone),
    /// The user database could not be read (an NSS source failed): nothing is decided.
    Unknown,
}

/// The state of the account `name` now.
#[must_use]
pub fn state_of(name: &str) -> Account {
    let user = match nix::unistd::User::from_name(name) {
        Ok(Some(user)) => user,
        Ok(None) => return Account::Gone(Gone::Missing),
        Err(error) => {
            tracing::warn!(user = %name, error = %error, "cannot read the user database");
            return Account::Unknown;
        }
    };
    if user.uid.is_root() {
        return Account::Living;
    }
    match shadow_of(name) {
        Some((password, expire)) => match gone_by_shadow(&password, expire, today()) {
            Some(gone) => Account::Gone(gone),
            None => Account::Living,
        },
        None => Account::Living,
    }
}

/// Whether the shadow fields `password` and `expire` (-1: never) make the account gone on day
/// `today` (days since the epoch).
#[must_use]
pub fn gone_by_shadow(password: &str, expire: i64, today: i64) -> Option<Gone> {
    if is_locked(password) {
        Some(Gone::Locked)
    } else if expire != -1 && today >= expire {
        Some(Gone::Expired { day: expire })
    } else {
        None
    }
}

/// Whether a shadow password field is a locked password: `!` followed by a hash. `!`, `!!`,
/// `*` and `!*` are accounts without a password (see the module documentation).
#[must_use]
pub fn is_locked(password: &str) -> bool {
    password
        .strip_prefix('!')
        .and_then(|hash| hash.chars().next())
        .is_some_and(|first| first != '!' && first != '*')
}

/// Days since 1970-01-01 now (UTC), as shadow counts them.
#[must_use]
pub fn today() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    i64::try_from(secs / 86_400).unwrap_or(i64::MAX)
}

/// The shadow password field and expiry day of `name`, or `None` when shadow has no entry
/// for it (or cannot be read).
fn shadow_of(name: &str) -> Option<(String, i64)> {
    let name = CString::new(name).ok()?;
    let mut entry = std::mem::MaybeUninit::<libc::spwd>::zeroed();
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::spwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call: `entry` and `buffer` outlive it, and the
    // buffer's length is passed with it.
    let status = unsafe {
        libc::getspnam_r(
            name.as_ptr(),
            entry.as_mut_ptr(),
            buffer.as_mut_ptr(),
            buffer.len(),
            &raw mut result,
        )
    };
    if status != 0 || result.is_null() {
        return None;
    }
    // SAFETY: `getspnam_r` succeeded and filled `entry`; its strings point into `buffer`.
    let entry = unsafe { entry.assume_init() };
    let password = if entry.sp_pwdp.is_null() {
        String::new()
    } else {
        // SAFETY: a non-null field is a NUL-terminated string inside `buffer`.
        unsafe { std::ffi::CStr::from_ptr(entry.sp_pwdp) }
            .to_string_lossy()
            .into_owned()
    };
    Some((password, entry.sp_expire))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$y$j9T$abcdefghijklmnop$0123456789abcdefghijklmnopqrstuvwxyzABCDE";

    #[test]
    fn a_password_locked_by_passwd_l_is_locked() {
        assert!(is_locked(&format!("!{HASH}")));
        assert!(!is_locked(HASH));
    }

    #[test]
    fn an_account_without_a_password_is_not_locked() {
        for field in ["!", "!!", "*", "!*", ""] {
            assert!(!is_locked(field), "{field:?} is not a locked password");
        }
    }

    #[test]
    fn expiry_follows_pam_unix() {
        assert_eq!(gone_by_shadow(HASH, -1, 20_000), None);
        assert_eq!(gone_by_shadow(HASH, 20_001, 20_000), None);
        assert_eq!(
            gone_by_shadow(HASH, 20_000, 20_000),
            Some(Gone::Expired { day: 20_000 })
        );
        // `chage -E 0`: expired since the epoch.
        assert_eq!(
            gone_by_shadow(HASH, 0, 20_000),
            Some(Gone::Expired { day: 0 })
        );
        assert_eq!(
            gone_by_shadow(&format!("!{HASH}"), 0, 20_000),
            Some(Gone::Locked)
        );
    }

    #[test]
    fn an_expiry_is_shown_as_a_date() {
        assert_eq!(
            Gone::Expired { day: 20_000 }.to_string(),
            "expired on 2024-10-04"
        );
        assert_eq!(
            Gone::Expired { day: 0 }.to_string(),
            "expired on 1970-01-01"
        );
    }

    #[test]
    fn root_and_a_missing_user_are_told_apart() {
        assert_eq!(state_of("root"), Account::Living);
        assert_eq!(state_of("kya-no-such-user-x"), Account::Gone(Gone::Missing));
    }
}
