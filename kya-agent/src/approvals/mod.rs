//! Verified approvals: what an approval must carry, beyond the caller's uid on the control
//! socket, for an agent whose config asks for more (`approval = "ssh-key"` or `"totp"`).
//!
//! - `challenge`: the text a human signs (exactly what they approve) and the single-use nonces
//!   that bind it to them and to a short time.
//! - `sshsig`: checking an `ssh-keygen -Y sign` signature against the caller's configured keys.
//! - `totp`: RFC 6238 codes, the enrolled secrets (a file in the daemon's state directory) and
//!   the codes already used.
pub mod challenge;
pub mod sshsig;
pub mod totp;

use serde::{Deserialize, Serialize};

pub use crate::config::ApprovalMethod;

/// How an approval was proven, as the audit trail and `kya grants` keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofRecord {
    pub method: ApprovalMethod,
    /// For `ssh-key`: the SHA256 fingerprint of the key that signed (`SHA256:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Why a proof was refused; nothing was granted and the request stays pending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error(
        "agent `{agent}` requires {method} approvals: {how}; nothing was granted and the \
         request stays pending"
    )]
    Missing {
        agent: String,
        method: ApprovalMethod,
        how: &'static str,
    },
    #[error(
        "this approval carries a {given} proof but agent `{agent}` requires {method} \
         approvals; nothing was granted"
    )]
    WrongMethod {
        agent: String,
        method: ApprovalMethod,
        given: ApprovalMethod,
    },
    #[error(
        "no challenge {0} is outstanding for you: it was used already, expired (challenges \
         last 5 minutes), or was never issued to you; ask for a new one (`kya approve ... \
         --challenge`); nothing was granted"
    )]
    UnknownNonce(String),
    #[error(
        "the challenge was issued for other terms than these (another request, resource, \
         agent or duration); sign a challenge for exactly what you approve; nothing was granted"
    )]
    OtherTerms,
    #[error("too many challenges are outstanding for you ({0}); use or let some expire first")]
    TooManyChallenges(usize),
    #[error("the signature is not an ssh signature (ssh-keygen -Y sign output): {0}")]
    Unreadable(String),
    #[error(
        "the signature is for namespace `{0}`, not `kya-approval`; sign with \
         `ssh-keygen -Y sign -n kya-approval`; nothing was granted"
    )]
    WrongNamespace(String),
    #[error(
        "the signature was made with key {fingerprint}, which is not one of {user}'s keys in \
         [approver_keys] of {config}; nothing was granted"
    )]
    NotYourKey {
        user: String,
        fingerprint: String,
        config: String,
    },
    #[error(
        "{user} has no key in [approver_keys] of {config}; add their public key there to let \
         them approve for agents with approval = \"ssh-key\""
    )]
    NoKeys { user: String, config: String },
    #[error(
        "the signature by {fingerprint} does not match this challenge (it signs other text); \
         nothing was granted"
    )]
    BadSignature { fingerprint: String },
    #[error(
        "the security key's signature by {fingerprint} does not say the user touched it; \
         nothing was granted"
    )]
    NoUserPresence { fingerprint: String },
    #[error("{user} has no authenticator enrolled; root enrolls one with `kya totp enroll {user}`")]
    NotEnrolled { user: String },
    #[error("the code is not {digits} digits")]
    MalformedCode { digits: u32 },
    #[error("wrong code for {user}; nothing was granted")]
    WrongCode { user: String },
    #[error(
        "too many wrong codes for {user}: codes are refused for up to {minutes} minutes; \
         nothing was granted"
    )]
    TooManyWrongCodes { user: String, minutes: u64 },
    #[error("this code for {user} was used already (each code counts once); wait for the next one")]
    CodeReused { user: String },
    #[error("the authenticator store {path}: {message}")]
    Store { path: String, message: String },
}

/// Fills `buffer` with random bytes from the kernel.
pub fn random_bytes(buffer: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buffer.len() {
        let rest = &mut buffer[filled..];
        // SAFETY: `rest` is a valid, writable buffer of `rest.len()` bytes.
        let got = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if let Ok(got) = usize::try_from(got) {
            filled += got;
        } else {
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }
    Ok(())
}

/// This host's name, as challenges and authenticator labels show it.
#[must_use]
pub fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid and writable for its length.
    let status = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len() - 1) };
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    match std::str::from_utf8(&buffer[..end]) {
        Ok(name) if status == 0 && !name.is_empty() => name.to_owned(),
        _ => "localhost".to_owned(),
    }
}
