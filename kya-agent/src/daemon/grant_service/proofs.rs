//! Verified approvals in the grant service: challenges for ssh-key approvals, checking the
//! proof an approval carries before its grant exists, and TOTP enrolment.
use super::{GrantService, error::GrantError};
use crate::{
    approvals::{
        ApprovalMethod, ProofError, ProofRecord,
        challenge::{self, Nonces, Signer, Subject},
        sshsig,
        totp::{self, Secrets},
    },
    config::is_valid_user_name,
    control::protocol::{Proof, Response},
    events::now_ms,
    grants::authority::Caller,
};

/// What the service keeps for verified approvals.
pub struct Approvals {
    pub nonces: Nonces,
    pub totp: Secrets,
    /// This host's name, part of every challenge and authenticator label.
    pub host: String,
}

impl Approvals {
    #[must_use]
    pub fn new(totp: Secrets) -> Self {
        Self {
            nonces: Nonces::default(),
            totp,
            host: crate::approvals::host_name(),
        }
    }
}

fn signer(caller: &Caller) -> Signer {
    Signer {
        uid: caller.uid,
        user: caller.user.clone(),
    }
}

impl GrantService {
    /// Issues a challenge for `subject` to `caller` (who may decide for its agent: checked by
    /// the caller of this).
    pub(super) fn issue_challenge(
        &mut self,
        subject: &Subject,
        caller: &Caller,
    ) -> Result<Response, GrantError> {
        let signer = signer(caller);
        let approval = self
            .agent(&subject.agent)
            .map_or(ApprovalMethod::Uid, |agent| agent.approval());
        if approval != ApprovalMethod::SshKey {
            // Nothing to sign: no nonce is spent on it.
            return Ok(Response::Challenge {
                approval: approval.name().to_owned(),
                text: challenge::text(subject, &signer, &self.approvals.host, "-", 0),
                nonce: None,
                expires_ms: 0,
            });
        }
        let (nonce, expires_ms) =
            self.approvals
                .nonces
                .issue(&signer, subject.clone(), now_ms())?;
        Ok(Response::Challenge {
            approval: approval.name().to_owned(),
            text: challenge::text(subject, &signer, &self.approvals.host, &nonce, expires_ms),
            nonce: Some(nonce),
            expires_ms,
        })
    }

    /// Checks that `proof` proves `caller` approves exactly `subject`, as its agent's
    /// `approval` requires, and spends it (a nonce or a code counts once). Nothing here grants.
    pub(super) fn prove(
        &mut self,
        subject: &Subject,
        proof: Option<Proof>,
        caller: &Caller,
    ) -> Result<ProofRecord, GrantError> {
        let required = self
            .agent(&subject.agent)
            .map_or(ApprovalMethod::Uid, |agent| agent.approval());
        let given = match &proof {
            None => ApprovalMethod::Uid,
            Some(Proof::SshKey { .. }) => ApprovalMethod::SshKey,
            Some(Proof::Totp { .. }) => ApprovalMethod::Totp,
        };
        if required != ApprovalMethod::Uid && given != required {
            return Err(match given {
                ApprovalMethod::Uid => ProofError::Missing {
                    agent: subject.agent.clone(),
                    method: required,
                    how: if required == ApprovalMethod::SshKey {
                        "sign it with your ssh key (kya approve/grant --key PATH, or --signature \
                         FILE --nonce N after --challenge)"
                    } else {
                        "give your authenticator's code (--totp CODE)"
                    },
                },
                _ => ProofError::WrongMethod {
                    agent: subject.agent.clone(),
                    method: required,
                    given,
                },
            }
            .into());
        }
        match proof {
            None => Ok(ProofRecord {
                method: ApprovalMethod::Uid,
                key: None,
            }),
            Some(Proof::SshKey { nonce, signature }) => {
                let signer = signer(caller);
                let text = self.approvals.nonces.text_for(
                    &nonce,
                    &signer,
                    subject,
                    &self.approvals.host,
                    now_ms(),
                )?;
                let config = self.config.current();
                let fingerprint = sshsig::verify(
                    config.approver_keys(&caller.user),
                    &caller.user,
                    &config.origin().display().to_string(),
                    &signature,
                    text.as_bytes(),
                )?;
                self.approvals.nonces.consume(&nonce);
                Ok(ProofRecord {
                    method: ApprovalMethod::SshKey,
                    key: Some(fingerprint),
                })
            }
            Some(Proof::Totp { code }) => {
                self.approvals
                    .totp
                    .accept(&caller.user, &code, now_ms() / 1_000)?;
                Ok(ProofRecord {
                    method: ApprovalMethod::Totp,
                    key: None,
                })
            }
        }
    }

    /// `kya totp enroll USER`: root only.
    pub(super) fn totp_enroll(
        &mut self,
        user: &str,
        caller: &Caller,
    ) -> Result<Response, GrantError> {
        root_only(caller, "enroll")?;
        if !is_valid_user_name(user) {
            return Err(GrantError::NotAUser(user.to_owned()));
        }
        let secret = self.approvals.totp.enroll(user)?;
        tracing::info!(user, by = %caller.user, "TOTP secret enrolled");
        Ok(Response::TotpEnrolled {
            user: user.to_owned(),
            uri: totp::uri(user, &self.approvals.host, &secret),
            secret,
        })
    }

    /// `kya totp remove USER`: root only.
    pub(super) fn totp_remove(
        &mut self,
        user: &str,
        caller: &Caller,
    ) -> Result<Response, GrantError> {
        root_only(caller, "remove")?;
        let existed = self.approvals.totp.remove(user)?;
        tracing::info!(user, by = %caller.user, existed, "TOTP secret removed");
        Ok(Response::TotpRemoved {
            user: user.to_owned(),
            existed,
        })
    }
}

fn root_only(caller: &Caller, what: &'static str) -> Result<(), GrantError> {
    if caller.uid == 0 {
        Ok(())
    } else {
        Err(GrantError::TotpRootOnly {
            user: caller.user.clone(),
            uid: caller.uid,
            what,
        })
    }
}
