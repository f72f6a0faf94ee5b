//! Makes decisions durable. Each decision is appended to the audit trail (and synced) before
//! it changes the state, and the state is then saved as a snapshot (written aside, synced and
//! renamed over the old one). A crash at any moment loses nothing that was acknowledged: at
//! start the snapshot is loaded and every audit record after its head is applied again.
use std::{
    fs::{self, File},
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use super::state::{Decision, State};
use crate::{
    audit::{AuditError, AuditLog, read_records},
    paths::{AUDIT_LOG_FILE, STATE_FILE},
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("state file {path}: {source}")]
    Snapshot {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "state file {path} is not valid ({detail}); move it aside to rebuild the state from the \
         audit trail"
    )]
    BadSnapshot { path: PathBuf, detail: String },
    #[error(
        "audit record {seq} in {path} is not a decision kya understands ({detail}); the trail \
         may have been edited: run `kya audit verify`"
    )]
    BadRecord {
        path: PathBuf,
        seq: u64,
        detail: String,
    },
}

/// The durable state: the audit trail and the snapshot, in one directory.
pub struct Store {
    state_path: PathBuf,
    audit: AuditLog,
    state: State,
}

impl Store {
    /// Opens (or creates) the store in `dir`, recovering decisions the snapshot missed.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let state_path = dir.join(STATE_FILE);
        let audit = AuditLog::open(&dir.join(AUDIT_LOG_FILE))?;
        let mut state = load_snapshot(&state_path)?;
        let mut replayed = 0;
        for record in read_records(audit.path())? {
            if record.seq <= state.audit_head.seq {
                continue;
            }
            let decision: Decision =
                serde_json::from_value(record.body.clone().into()).map_err(|error| {
                    StoreError::BadRecord {
                        path: audit.path().to_owned(),
                        seq: record.seq,
                        detail: error.to_string(),
                    }
                })?;
            state.apply(&decision);
            state.audit_head = crate::audit::AuditHead {
                seq: record.seq,
                hash: record.hash.clone(),
            };
            replayed += 1;
        }
        let store = Self {
            state_path,
            audit,
            state,
        };
        if replayed > 0 {
            tracing::info!(
                records = replayed,
                "recovered decisions from the audit trail"
            );
            store.save()?;
        }
        Ok(store)
    }

    #[must_use]
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Records `decision`: durable in the audit trail before it changes the state.
    pub fn record(&mut self, decision: &Decision) -> Result<(), StoreError> {
        self.audit.append(decision)?;
        self.state.apply(decision);
        self.state.audit_head = self.audit.head();
        self.save()
    }

    /// Changes the state without an audit record (a repeat of a pending request: its count and
    /// last-seen time), to be saved with the next `save`.
    pub fn update_quietly(&mut self, change: impl FnOnce(&mut State)) {
        change(&mut self.state);
    }

    /// Writes the snapshot: aside, synced, renamed over the old one, directory synced.
    pub fn save(&self) -> Result<(), StoreError> {
        let error = |source| StoreError::Snapshot {
            path: self.state_path.clone(),
            source,
        };
        let partial = self.state_path.with_extension("json.partial");
        let text = serde_json::to_vec_pretty(&self.state).expect("state always serializes");
        let mut file = File::create(&partial).map_err(error)?;
        file.write_all(&text).map_err(error)?;
        file.sync_all().map_err(error)?;
        fs::rename(&partial, &self.state_path).map_err(error)?;
        if let Some(dir) = self.state_path.parent() {
            File::open(dir)
                .and_then(|dir| dir.sync_all())
                .map_err(error)?;
        }
        Ok(())
    }
}

fn load_snapshot(path: &Path) -> Result<State, StoreError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| StoreError::BadSnapshot {
            path: path.to_owned(),
            detail: error.to_string(),
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(State::default()),
        Err(source) => Err(StoreError::Snapshot {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grants::{
        Resource,
        state::{ActiveGrant, PendingRequest},
    };

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kya-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn request(id: u32) -> Decision {
        Decision::Request {
            request: PendingRequest {
                id,
                agent: "coder".into(),
                resource: Resource::File {
                    dev: 1,
                    ino: u64::from(id),
                    path: format!("/secret/{id}").into(),
                    via: None,
                },
                pid: 1,
                exe: None,
                operation: "file-open".into(),
                first_ms: 1,
                last_ms: 1,
                count: 1,
                why: Some("credential file".into()),
            },
        }
    }

    #[test]
    fn state_survives_reopening() {
        let dir = temp_dir("reopen");
        let mut store = Store::open(&dir).unwrap();
        store.record(&request(1)).unwrap();
        store
            .record(&Decision::Approve {
                request: 1,
                grant: ActiveGrant {
                    id: 1,
                    agent: "coder".into(),
                    resource: Resource::File {
                        dev: 1,
                        ino: 1,
                        path: "/secret/1".into(),
                        via: None,
                    },
                    approver: "alice".into(),
                    approver_uid: 1000,
                    reason: None,
                    request: Some(1),
                    created_ms: 1,
                    expires_ms: 2,
                    once: true,
                    proof: Some(crate::approvals::ProofRecord {
                        method: crate::approvals::ApprovalMethod::SshKey,
                        key: Some("SHA256:abc".into()),
                    }),
                    uses: 0,
                },
            })
            .unwrap();
        let before = store.state().clone();
        drop(store);
        let reopened = Store::open(&dir).unwrap();
        assert_eq!(reopened.state(), &before);
        assert_eq!(reopened.state().audit_head.seq, 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn decisions_after_the_snapshot_are_replayed() {
        let dir = temp_dir("replay");
        let mut store = Store::open(&dir).unwrap();
        store.record(&request(1)).unwrap();
        let snapshot = fs::read(dir.join(STATE_FILE)).unwrap();
        store.record(&request(2)).unwrap();
        drop(store);
        // As if the daemon died between the audit append and the snapshot.
        fs::write(dir.join(STATE_FILE), snapshot).unwrap();
        let reopened = Store::open(&dir).unwrap();
        assert_eq!(
            reopened.state().pending.keys().copied().collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(reopened.state().new_request_id(), 3);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_snapshot_is_an_error_naming_the_file() {
        let dir = temp_dir("corrupt");
        fs::write(dir.join(STATE_FILE), b"{not json").unwrap();
        let error = Store::open(&dir).err().unwrap().to_string();
        assert!(error.contains("state.json"), "{error}");
        assert!(error.contains("move it aside"), "{error}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
