//! Human-approved grants: pending requests from denials, approvals, single-use and timed
//! grants, revocation, and the durable record of every decision.
//!
//! `state` is the pure model (what is pending, what is granted) and how each recorded
//! `Decision` changes it; `store` makes decisions durable (audit trail first, then a snapshot);
//! `authority` says who may decide for an agent; `resource`, `unix_socket` and `duration` parse
//! what humans type. The daemon's `grant_service` ties them to the kernel.
pub mod authority;
pub mod duration;
pub mod resource;
pub mod state;
pub mod store;
mod unix_socket;

pub use resource::{Resource, ResourceKey};
pub use state::{ActiveGrant, Decision, PendingRequest, State};

/// Shown and typed as `r<N>`.
#[must_use]
pub fn request_label(id: u32) -> String {
    format!("r{id}")
}

/// Shown and typed as `g<N>`.
#[must_use]
pub fn grant_label(id: u32) -> String {
    format!("g{id}")
}

/// A request or grant id that cannot be read, as typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not a {} id; ids look like {prefix}12 (see `kya {}`)",
    if *.prefix == 'r' { "request" } else { "grant" },
    if *.prefix == 'r' { "pending" } else { "grants" },
)]
pub struct LabelError {
    pub text: String,
    pub prefix: char,
}

/// Parses `r12` (prefix `r`) or `g7` (prefix `g`); a bare number is accepted too.
pub fn parse_label(text: &str, prefix: char) -> Result<u32, LabelError> {
    let digits = text.strip_prefix(prefix).unwrap_or(text);
    match digits.parse::<u32>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(LabelError {
            text: text.to_owned(),
            prefix,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip() {
        assert_eq!(parse_label(&request_label(12), 'r'), Ok(12));
        assert_eq!(parse_label("7", 'g'), Ok(7));
        assert!(parse_label("g0", 'g').is_err());
        assert!(parse_label("r-1", 'r').is_err());
        assert!(
            parse_label("x1", 'r')
                .unwrap_err()
                .to_string()
                .contains("kya pending")
        );
    }
}
