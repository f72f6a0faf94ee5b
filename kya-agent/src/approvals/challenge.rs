//! The text a human signs for an ssh-key approval, and the nonces that make each signature
//! count once, for one caller, for five minutes.
//!
//! The daemon never trusts text the caller sends: it keeps what it issued with each nonce and,
//! at approval, rebuilds the subject from its own records (the pending request, the resolved
//! resource) and the terms in the approval. A signature counts only if it signs exactly the
//! text the daemon rebuilt.
use std::{collections::HashMap, fmt::Write as _, time::Duration};

use super::{ProofError, random_bytes};

/// How long a challenge may be answered.
pub const LIFETIME: Duration = Duration::from_mins(5);

/// Challenges outstanding per caller at most.
pub const MAX_PER_CALLER: usize = 16;

/// Challenges outstanding in all at most.
pub const MAX_OUTSTANDING: usize = 256;

/// The namespace signatures are made in (`ssh-keygen -Y sign -n kya-approval`).
pub const NAMESPACE: &str = "kya-approval";

/// What is being approved, as the daemon's own records say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub agent: String,
    /// The pending request (`r12`), or `None` for a grant ahead of time.
    pub request: Option<String>,
    /// The resource as `kya approve` shows it (`file /home/alice/.aws/credentials`).
    pub resource: String,
    pub once: bool,
    /// How long the grant lasts (or, once, how long its one use may wait).
    pub lasts: Duration,
}

/// Who asked for the challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub uid: u32,
    pub user: String,
}

/// The text to sign: every term of the approval, the host, the human, the nonce and its end.
#[must_use]
pub fn text(
    subject: &Subject,
    signer: &Signer,
    host: &str,
    nonce: &str,
    expires_ms: u64,
) -> String {
    let mut text = String::from("kya approval\n");
    let _ = writeln!(text, "host: {host}");
    let _ = writeln!(text, "approver: {} (uid {})", signer.user, signer.uid);
    let _ = writeln!(text, "agent: {}", subject.agent);
    match &subject.request {
        Some(request) => {
            let _ = writeln!(text, "approve: {request}");
        }
        None => text.push_str("grant: ahead of time\n"),
    }
    let _ = writeln!(text, "resource: {}", subject.resource);
    let seconds = subject.lasts.as_secs();
    if subject.once {
        let _ = writeln!(text, "terms: once, within {seconds}s");
    } else {
        let _ = writeln!(text, "terms: for {seconds}s");
    }
    let _ = writeln!(text, "nonce: {nonce}");
    let _ = writeln!(text, "expires-ms: {expires_ms}");
    text
}

struct Outstanding {
    signer: Signer,
    subject: Subject,
    expires_ms: u64,
}

/// The challenges issued and not yet used or expired.
#[derive(Default)]
pub struct Nonces {
    outstanding: HashMap<String, Outstanding>,
}

impl Nonces {
    /// Issues a fresh nonce for `signer` to approve `subject`; returns it with its expiry.
    pub fn issue(
        &mut self,
        signer: &Signer,
        subject: Subject,
        now_ms: u64,
    ) -> Result<(String, u64), ProofError> {
        self.outstanding
            .retain(|_, issued| issued.expires_ms > now_ms);
        let theirs = self
            .outstanding
            .values()
            .filter(|issued| issued.signer.uid == signer.uid)
            .count();
        if theirs >= MAX_PER_CALLER {
            return Err(ProofError::TooManyChallenges(theirs));
        }
        if self.outstanding.len() >= MAX_OUTSTANDING {
            return Err(ProofError::TooManyChallenges(self.outstanding.len()));
        }
        let mut bytes = [0u8; 16];
        random_bytes(&mut bytes).map_err(|error| ProofError::Store {
            path: "getrandom".to_owned(),
            message: error.to_string(),
        })?;
        let nonce = bytes.iter().fold(String::with_capacity(32), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        });
        let expires_ms = now_ms.saturating_add(duration_ms(LIFETIME));
        self.outstanding.insert(
            nonce.clone(),
            Outstanding {
                signer: signer.clone(),
                subject,
                expires_ms,
            },
        );
        Ok((nonce, expires_ms))
    }

    /// The text issued with `nonce`, if `signer` holds it, it has not expired and it was for
    /// exactly `subject`. The nonce stays outstanding: [`Nonces::consume`] ends it once the
    /// signature checked out.
    pub fn text_for(
        &mut self,
        nonce: &str,
        signer: &Signer,
        subject: &Subject,
        host: &str,
        now_ms: u64,
    ) -> Result<String, ProofError> {
        self.outstanding
            .retain(|_, issued| issued.expires_ms > now_ms);
        let issued = self
            .outstanding
            .get(nonce)
            .filter(|issued| issued.signer.uid == signer.uid)
            .ok_or_else(|| ProofError::UnknownNonce(nonce.to_owned()))?;
        if issued.subject != *subject {
            return Err(ProofError::OtherTerms);
        }
        Ok(text(subject, signer, host, nonce, issued.expires_ms))
    }

    /// Ends `nonce`: a signature over its text never counts again.
    pub fn consume(&mut self, nonce: &str) {
        self.outstanding.remove(nonce);
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(request: &str) -> Subject {
        Subject {
            agent: "coder".to_owned(),
            request: Some(request.to_owned()),
            resource: "file /home/alice/.aws/credentials".to_owned(),
            once: true,
            lasts: Duration::from_mins(10),
        }
    }

    fn alice() -> Signer {
        Signer {
            uid: 1000,
            user: "alice".to_owned(),
        }
    }

    #[test]
    fn the_text_names_every_term() {
        let text = text(&subject("r3"), &alice(), "box", "00ff", 42);
        assert_eq!(
            text,
            "kya approval\nhost: box\napprover: alice (uid 1000)\nagent: coder\napprove: r3\n\
             resource: file /home/alice/.aws/credentials\nterms: once, within 600s\n\
             nonce: 00ff\nexpires-ms: 42\n"
        );
        let mut ahead = subject("r3");
        ahead.request = None;
        ahead.once = false;
        let text = super::text(&ahead, &alice(), "box", "00ff", 42);
        assert!(text.contains("grant: ahead of time\n"), "{text}");
        assert!(text.contains("terms: for 600s\n"), "{text}");
    }

    #[test]
    fn a_nonce_is_bound_to_its_caller_terms_and_time() {
        let mut nonces = Nonces::default();
        let (nonce, expires) = nonces.issue(&alice(), subject("r3"), 1_000).unwrap();
        assert_eq!(nonce.len(), 32);
        assert_eq!(expires, 1_000 + 300_000);
        let bob = Signer {
            uid: 1002,
            user: "bob".to_owned(),
        };
        assert!(matches!(
            nonces.text_for(&nonce, &bob, &subject("r3"), "box", 2_000),
            Err(ProofError::UnknownNonce(_))
        ));
        assert_eq!(
            nonces.text_for(&nonce, &alice(), &subject("r4"), "box", 2_000),
            Err(ProofError::OtherTerms)
        );
        let text = nonces
            .text_for(&nonce, &alice(), &subject("r3"), "box", 2_000)
            .unwrap();
        assert!(text.contains(&format!("nonce: {nonce}\n")));
        // Single use.
        nonces.consume(&nonce);
        assert!(matches!(
            nonces.text_for(&nonce, &alice(), &subject("r3"), "box", 2_000),
            Err(ProofError::UnknownNonce(_))
        ));
        // Expiry.
        let (late, _) = nonces.issue(&alice(), subject("r3"), 1_000).unwrap();
        assert!(matches!(
            nonces.text_for(&late, &alice(), &subject("r3"), "box", 301_000),
            Err(ProofError::UnknownNonce(_))
        ));
        // Two nonces are never the same.
        let (a, _) = nonces.issue(&alice(), subject("r3"), 1_000).unwrap();
        let (b, _) = nonces.issue(&alice(), subject("r3"), 1_000).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn outstanding_challenges_are_bounded() {
        let mut nonces = Nonces::default();
        for _ in 0..MAX_PER_CALLER {
            nonces.issue(&alice(), subject("r3"), 0).unwrap();
        }
        assert_eq!(
            nonces.issue(&alice(), subject("r3"), 0),
            Err(ProofError::TooManyChallenges(MAX_PER_CALLER))
        );
        // Expired ones make room.
        assert!(nonces.issue(&alice(), subject("r3"), 300_001).is_ok());
    }
}
