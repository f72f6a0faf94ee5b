//! Checks an `ssh-keygen -Y sign -n kya-approval` signature against the keys configured for the
//! caller in `[approver_keys]`, and only those.
//!
//! Key types checked (ssh-key crate, features `ed25519` and `p256`): ssh-ed25519,
//! ecdsa-sha2-nistp256, and the FIDO2 security key types sk-ssh-ed25519@openssh.com and
//! sk-ecdsa-sha2-nistp256@openssh.com (whose user-presence flag must be set). Not supported:
//! ssh-rsa, ecdsa-sha2-nistp384/521 and ssh-dss keys (a signature by one is refused).
use ssh_key::{Algorithm, HashAlg, PublicKey, SshSig};

use super::{ProofError, challenge::NAMESPACE};

/// The flag a FIDO2 authenticator sets in its signature when the user touched it.
const USER_PRESENT: u8 = 0x01;

/// Verifies `armored` over `message` with one of `keys`; returns the signing key's SHA256
/// fingerprint.
pub fn verify(
    keys: &[PublicKey],
    user: &str,
    config: &str,
    armored: &str,
    message: &[u8],
) -> Result<String, ProofError> {
    if keys.is_empty() {
        return Err(ProofError::NoKeys {
            user: user.to_owned(),
            config: config.to_owned(),
        });
    }
    let signature = SshSig::from_pem(armored.trim())
        .map_err(|error| ProofError::Unreadable(error.to_string()))?;
    if signature.namespace() != NAMESPACE {
        return Err(ProofError::WrongNamespace(signature.namespace().to_owned()));
    }
    let fingerprint = signature
        .public_key()
        .fingerprint(HashAlg::Sha256)
        .to_string();
    let Some(key) = keys
        .iter()
        .find(|key| key.key_data() == signature.public_key())
    else {
        return Err(ProofError::NotYourKey {
            user: user.to_owned(),
            fingerprint,
            config: config.to_owned(),
        });
    };
    key.verify(NAMESPACE, message, &signature)
        .map_err(|_| ProofError::BadSignature {
            fingerprint: fingerprint.clone(),
        })?;
    if matches!(
        signature.algorithm(),
        Algorithm::SkEd25519 | Algorithm::SkEcdsaSha2NistP256
    ) {
        // The signature ends with the authenticator's flags byte and a 4-byte counter.
        let bytes = signature.signature().as_bytes();
        let flags = bytes.len().checked_sub(5).map(|at| bytes[at]);
        if flags.is_none_or(|flags| flags & USER_PRESENT == 0) {
            return Err(ProofError::NoUserPresence { fingerprint });
        }
    }
    Ok(fingerprint)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::{
        io::Write as _,
        path::{Path, PathBuf},
        process::{Command, Stdio},
    };

    use super::*;

    /// A fresh directory for one test's keys.
    pub(crate) fn key_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kya-sshsig-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Makes a key with ssh-keygen; returns its private key path.
    pub(crate) fn keygen(dir: &Path, name: &str, kind: &str) -> PathBuf {
        let path = dir.join(name);
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C", name, "-f"])
            .arg(&path)
            .status()
            .expect("ssh-keygen must be installed for these tests");
        assert!(status.success(), "ssh-keygen -t {kind}");
        path
    }

    pub(crate) fn public(path: &Path) -> PublicKey {
        PublicKey::read_openssh_file(&path.with_extension("pub")).unwrap()
    }

    /// Signs `message` with ssh-keygen in `namespace`; returns the armored signature.
    pub(crate) fn sign(key: &Path, namespace: &str, message: &str) -> String {
        let mut child = Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", namespace, "-f"])
            .arg(key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(message.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "ssh-keygen -Y sign: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    #[test]
    fn signatures_by_the_callers_keys_over_the_text_count() {
        let dir = key_dir("good");
        for kind in ["ed25519", "ecdsa"] {
            let key = keygen(&dir, kind, kind);
            let signature = sign(&key, NAMESPACE, "the terms\n");
            let fingerprint = verify(
                &[public(&key)],
                "alice",
                "kya.toml",
                &signature,
                b"the terms\n",
            )
            .unwrap();
            assert_eq!(
                fingerprint,
                public(&key).fingerprint(HashAlg::Sha256).to_string()
            );
            assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn other_keys_other_text_other_namespaces_are_refused() {
        let dir = key_dir("bad");
        let alice = keygen(&dir, "alice", "ed25519");
        let mallory = keygen(&dir, "mallory", "ed25519");
        let keys = [public(&alice)];
        let by_mallory = sign(&mallory, NAMESPACE, "the terms\n");
        assert!(matches!(
            verify(&keys, "alice", "kya.toml", &by_mallory, b"the terms\n"),
            Err(ProofError::NotYourKey { .. })
        ));
        let signed = sign(&alice, NAMESPACE, "other terms\n");
        assert!(matches!(
            verify(&keys, "alice", "kya.toml", &signed, b"the terms\n"),
            Err(ProofError::BadSignature { .. })
        ));
        let git = sign(&alice, "git", "the terms\n");
        assert_eq!(
            verify(&keys, "alice", "kya.toml", &git, b"the terms\n"),
            Err(ProofError::WrongNamespace("git".to_owned()))
        );
        assert!(matches!(
            verify(&[], "alice", "kya.toml", &signed, b"the terms\n"),
            Err(ProofError::NoKeys { .. })
        ));
        assert!(matches!(
            verify(
                &keys,
                "alice",
                "kya.toml",
                "not a signature",
                b"the terms\n"
            ),
            Err(ProofError::Unreadable(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
