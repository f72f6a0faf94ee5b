//! RFC 6238 one-time codes (HMAC-SHA1, 30-second steps, 6 digits, one step either side), the
//! secrets `kya totp enroll` made, and the codes already used: each (user, step) counts once.
//!
//! The secrets live in one file in the daemon's state directory (0600, root), which the kernel
//! programs protect from every agent as kya's own files.
use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs,
    io::Write as _,
    os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use sha1::Sha1;

use super::{ProofError, random_bytes};

/// Seconds per step.
pub const STEP_SECONDS: u64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one (clock drift, typing time).
pub const WINDOW: u64 = 1;
/// Bytes of a new secret (160 bits, as RFC 4226 recommends).
pub const SECRET_BYTES: usize = 20;
/// Wrong codes a user may give within [`FAILURE_SECONDS`]; after that every code is refused
/// unchecked until the oldest failure ages out, so a shell as the approver cannot guess codes
/// (three of a million are good at any time).
pub const MAX_FAILURES: usize = 5;
pub const FAILURE_SECONDS: u64 = 300;

/// The HOTP value (RFC 4226) of `secret` at `counter`, as a `digits`-digit number.
#[must_use]
pub fn code(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    binary % 10u32.pow(digits)
}

/// The step `unix_seconds` falls in.
#[must_use]
pub fn step(unix_seconds: u64) -> u64 {
    unix_seconds / STEP_SECONDS
}

/// The step within the window around `now_step` whose code is `code`, if any.
#[must_use]
pub fn matching_step(secret: &[u8], code_value: u32, now_step: u64, digits: u32) -> Option<u64> {
    (now_step.saturating_sub(WINDOW)..=now_step.saturating_add(WINDOW))
        .find(|&candidate| self::code(secret, candidate, digits) == code_value)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Enrolled {
    /// The secret in base32, as the authenticator took it.
    secret: String,
    /// The newest step whose code was accepted: it and every step before it are spent.
    #[serde(default)]
    last_step: u64,
}

/// The enrolled users, kept in one file.
pub struct Secrets {
    path: PathBuf,
    users: BTreeMap<String, Enrolled>,
    /// When each user last gave wrong codes (seconds), in memory only.
    failures: BTreeMap<String, Vec<u64>>,
}

impl Secrets {
    /// Reads the file at `path` (none yet: nobody enrolled).
    pub fn open(path: &Path) -> Result<Self, ProofError> {
        let users = match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| store(path, &error))?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(error) => return Err(store(path, &error)),
        };
        Ok(Self {
            path: path.to_owned(),
            users,
            failures: BTreeMap::new(),
        })
    }

    /// Makes a new secret for `user` (replacing theirs) and returns it in base32.
    pub fn enroll(&mut self, user: &str) -> Result<String, ProofError> {
        let mut secret = [0u8; SECRET_BYTES];
        random_bytes(&mut secret).map_err(|error| store(&self.path, &error))?;
        let encoded = BASE32_NOPAD.encode(&secret);
        let before = self.users.insert(
            user.to_owned(),
            Enrolled {
                secret: encoded.clone(),
                last_step: 0,
            },
        );
        if let Err(error) = self.save() {
            match before {
                Some(before) => self.users.insert(user.to_owned(), before),
                None => self.users.remove(user),
            };
            return Err(error);
        }
        Ok(encoded)
    }

    /// Forgets `user`'s secret; `false` if they had none.
    pub fn remove(&mut self, user: &str) -> Result<bool, ProofError> {
        let Some(before) = self.users.remove(user) else {
            return Ok(false);
        };
        if let Err(error) = self.save() {
            self.users.insert(user.to_owned(), before);
            return Err(error);
        }
        Ok(true)
    }

    /// Whether `user` has a secret.
    #[must_use]
    pub fn is_enrolled(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// Accepts `typed` as `user`'s code at `unix_seconds` and spends it (durably) before
    /// returning: a code counts once.
    pub fn accept(&mut self, user: &str, typed: &str, unix_seconds: u64) -> Result<(), ProofError> {
        let enrolled = self
            .users
            .get(user)
            .ok_or_else(|| ProofError::NotEnrolled {
                user: user.to_owned(),
            })?;
        let failures = self.failures.entry(user.to_owned()).or_default();
        failures.retain(|&at| at.saturating_add(FAILURE_SECONDS) > unix_seconds);
        if failures.len() >= MAX_FAILURES {
            return Err(ProofError::TooManyWrongCodes {
                user: user.to_owned(),
                minutes: FAILURE_SECONDS / 60,
            });
        }
        let typed = typed.trim();
        let digits = usize::try_from(DIGITS).unwrap_or(usize::MAX);
        if typed.len() != digits || !typed.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ProofError::MalformedCode { digits: DIGITS });
        }
        let value: u32 = typed
            .parse()
            .map_err(|_| ProofError::MalformedCode { digits: DIGITS })?;
        let secret = BASE32_NOPAD
            .decode(enrolled.secret.as_bytes())
            .map_err(|_| ProofError::Store {
                path: self.path.display().to_string(),
                message: format!("the secret of {user} is not base32"),
            })?;
        let Some(step) = matching_step(&secret, value, step(unix_seconds), DIGITS) else {
            if let Some(failures) = self.failures.get_mut(user) {
                failures.push(unix_seconds);
            }
            return Err(ProofError::WrongCode {
                user: user.to_owned(),
            });
        };
        if step <= enrolled.last_step {
            return Err(ProofError::CodeReused {
                user: user.to_owned(),
            });
        }
        let before = enrolled.last_step;
        self.users.get_mut(user).expect("looked up above").last_step = step;
        if let Err(error) = self.save() {
            self.users.get_mut(user).expect("looked up above").last_step = before;
            return Err(error);
        }
        Ok(())
    }

    /// Writes the file: aside (0600), synced, renamed over the old one.
    fn save(&self) -> Result<(), ProofError> {
        let aside = self.path.with_extension("json.new");
        let json = serde_json::to_vec_pretty(&self.users).expect("secrets serialize");
        let write = || -> std::io::Result<()> {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&aside)?;
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
            file.write_all(&json)?;
            file.sync_all()?;
            fs::rename(&aside, &self.path)
        };
        write().map_err(|error| store(&self.path, &error))
    }
}

/// The `otpauth://` URI an authenticator app takes (as a QR code or pasted).
#[must_use]
pub fn uri(user: &str, host: &str, secret: &str) -> String {
    format!(
        "otpauth://totp/kya:{}@{}?secret={secret}&issuer=kya&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        percent(user),
        percent(host)
    )
}

/// `text` with every byte outside [A-Za-z0-9._-] percent-encoded.
fn percent(text: &str) -> String {
    text.bytes().fold(String::new(), |mut out, byte| {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
        out
    })
}

fn store(path: &Path, error: &dyn std::fmt::Display) -> ProofError {
    ProofError::Store {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, the SHA1 rows: (time, 8-digit TOTP).
    const VECTORS: [(u64, u32); 6] = [
        (59, 94_287_082),
        (1_111_111_109, 7_081_804),
        (1_111_111_111, 14_050_471),
        (1_234_567_890, 89_005_924),
        (2_000_000_000, 69_279_037),
        (20_000_000_000, 65_353_130),
    ];
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors() {
        for (time, expected) in VECTORS {
            assert_eq!(code(RFC_SECRET, step(time), 8), expected, "T = {time}");
            // Six digits are the last six of the same value.
            assert_eq!(code(RFC_SECRET, step(time), 6), expected % 1_000_000);
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kya-totp-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir.join("totp.json")
    }

    fn code_at(secret: &str, time: u64) -> String {
        format!(
            "{:06}",
            code(
                &BASE32_NOPAD.decode(secret.as_bytes()).unwrap(),
                step(time),
                DIGITS
            )
        )
    }

    #[test]
    fn codes_count_once_within_one_step_either_side() {
        let path = temp("accept");
        let mut secrets = Secrets::open(&path).unwrap();
        let secret = secrets.enroll("alice").unwrap();
        assert_eq!(
            BASE32_NOPAD.decode(secret.as_bytes()).unwrap().len(),
            SECRET_BYTES
        );
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let now = 1_800_000_000;
        // The previous step's code is still good, once.
        secrets
            .accept("alice", &code_at(&secret, now - 30), now)
            .unwrap();
        assert_eq!(
            secrets.accept("alice", &code_at(&secret, now - 30), now),
            Err(ProofError::CodeReused {
                user: "alice".to_owned()
            })
        );
        secrets
            .accept("alice", &code_at(&secret, now), now)
            .unwrap();
        // Replay survives a restart.
        let mut reopened = Secrets::open(&path).unwrap();
        assert!(matches!(
            reopened.accept("alice", &code_at(&secret, now), now),
            Err(ProofError::CodeReused { .. })
        ));
        // Two steps away is too far; malformed codes and strangers are refused.
        assert!(matches!(
            reopened.accept("alice", &code_at(&secret, now + 90), now),
            Err(ProofError::WrongCode { .. })
        ));
        assert!(matches!(
            reopened.accept("alice", "12345", now),
            Err(ProofError::MalformedCode { .. })
        ));
        assert!(matches!(
            reopened.accept("bob", "123456", now),
            Err(ProofError::NotEnrolled { .. })
        ));
        // Guessing is cut short: after five wrong codes even the right one is refused.
        for _ in 0..4 {
            assert!(matches!(
                reopened.accept("alice", "000000", now + 30),
                Err(ProofError::WrongCode { .. })
            ));
        }
        assert!(matches!(
            reopened.accept("alice", &code_at(&secret, now + 30), now + 30),
            Err(ProofError::TooManyWrongCodes { .. })
        ));
        // ... until the failures age out.
        reopened
            .accept("alice", &code_at(&secret, now + 330), now + 330)
            .unwrap();
        assert!(reopened.remove("alice").unwrap());
        assert!(!Secrets::open(&path).unwrap().is_enrolled("alice"));
    }

    #[test]
    fn the_uri_names_user_host_and_secret() {
        assert_eq!(
            uri("alice", "box 1", "ABC"),
            "otpauth://totp/kya:alice@box%201?secret=ABC&issuer=kya&algorithm=SHA1&digits=6&period=30"
        );
    }
}
