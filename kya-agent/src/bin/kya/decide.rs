//! The commands that change what agents may do: `kya approve`, `kya deny`, `kya grant` and
//! `kya revoke`. The daemon checks who is asking; these only say what is asked.
use std::{path::Path, process::ExitCode};

use kya_agent::{
    control::protocol::{GrantView, Request, Response},
    text::escape,
};

use crate::{
    ask::{ask, time, unexpected},
    prove::{self, Prepared, ProofArgs},
};

/// How long a grant lasts: at least one of `--once` and `--for`.
#[derive(clap::Args)]
#[group(required = true, multiple = true)]
pub struct Lasts {
    /// One use: the agent's next attempt succeeds, later ones are refused again. With --for,
    /// the use must come within that time (otherwise within 10 minutes).
    #[arg(long)]
    once: bool,
    /// How long the grant lasts, such as 30s, 15m or 2h (at most 1d).
    #[arg(long = "for", value_name = "DURATION")]
    duration: Option<String>,
}

#[derive(clap::Args)]
#[command(after_long_help = "Examples:
  kya approve r3 --once --reason \"rotate keys\"   # exactly one open or connection goes through
  kya approve r4 --for 15m                       # everything on that resource for 15 minutes")]
pub struct ApproveArgs {
    /// The pending request, as `kya pending` shows it (r12).
    id: String,
    #[command(flatten)]
    lasts: Lasts,
    /// Why it is approved, kept in the audit trail.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    #[command(flatten)]
    proof: ProofArgs,
}

#[derive(clap::Args)]
pub struct DenyArgs {
    /// The pending request, as `kya pending` shows it (r12).
    id: String,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("resource").required(true).args(["file", "connect", "unix"])))]
#[command(after_long_help = "Examples:
  kya grant --agent coder --connect db.internal:5432 --for 1h --reason migration
  kya grant --agent coder --file ~/.kube/config --once
  kya grant --agent coder --unix /run/user/1000/bus --for 10m")]
pub struct GrantArgs {
    /// The agent the grant is for.
    #[arg(long, value_name = "NAME")]
    agent: String,
    /// A file the agent may open (by identity: any path to the same file).
    #[arg(long, value_name = "PATH", value_hint = clap::ValueHint::FilePath)]
    file: Option<std::path::PathBuf>,
    /// A peer the agent may connect or send to: HOST:PORT, 1.2.3.4:443 or [::1]:8080.
    #[arg(long, value_name = "HOST:PORT")]
    connect: Option<String>,
    /// A unix socket the agent may connect or send to, whoever serves it: its path (the socket
    /// itself, symlinks followed) or @NAME for an abstract socket.
    #[arg(long, value_name = "PATH|@NAME")]
    unix: Option<String>,
    #[command(flatten)]
    lasts: Lasts,
    /// Why it is granted, kept in the audit trail.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    #[command(flatten)]
    proof: ProofArgs,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["id", "approver", "agent"])))]
#[command(after_long_help = "Examples:
  kya revoke g7
  kya revoke --agent coder
  kya revoke --approver alice")]
pub struct RevokeArgs {
    /// The grant, as `kya grants` shows it (g3).
    id: Option<String>,
    /// Every grant this user approved (for when they leave).
    #[arg(long, value_name = "USER", value_hint = clap::ValueHint::Username)]
    approver: Option<String>,
    /// Every grant of this agent.
    #[arg(long, value_name = "NAME")]
    agent: Option<String>,
}

pub fn approve(socket: &Path, args: ApproveArgs) -> ExitCode {
    let challenge = Request::Challenge {
        approve: Some(args.id.clone()),
        agent: None,
        file: None,
        connect: None,
        unix: None,
        once: args.lasts.once,
        duration: args.lasts.duration.clone(),
    };
    let proof = match prove::prepare(socket, "approve", &args.proof, &challenge) {
        Prepared::Send(proof) => proof,
        Prepared::Done(code) => return code,
    };
    let request = Request::Approve {
        id: args.id,
        once: args.lasts.once,
        duration: args.lasts.duration,
        reason: args.reason,
        proof,
    };
    granted(socket, "approve", &request)
}

pub fn grant(socket: &Path, args: GrantArgs) -> ExitCode {
    // The daemon has its own working directory: send the file as an absolute path.
    let file = match args.file.as_deref().map(std::path::absolute) {
        None => None,
        Some(Ok(absolute)) => Some(absolute.display().to_string()),
        Some(Err(error)) => {
            eprintln!("kya grant: {error}");
            return ExitCode::FAILURE;
        }
    };
    let unix = match args.unix.as_deref().map(absolute_socket) {
        None => None,
        Some(Ok(socket)) => Some(socket),
        Some(Err(error)) => {
            eprintln!("kya grant: {error}");
            return ExitCode::FAILURE;
        }
    };
    let challenge = Request::Challenge {
        approve: None,
        agent: Some(args.agent.clone()),
        file: file.clone(),
        connect: args.connect.clone(),
        unix: unix.clone(),
        once: args.lasts.once,
        duration: args.lasts.duration.clone(),
    };
    let proof = match prove::prepare(socket, "grant", &args.proof, &challenge) {
        Prepared::Send(proof) => proof,
        Prepared::Done(code) => return code,
    };
    let request = Request::Grant {
        agent: args.agent,
        file,
        connect: args.connect,
        unix,
        once: args.lasts.once,
        duration: args.lasts.duration,
        reason: args.reason,
        proof,
    };
    granted(socket, "grant", &request)
}

/// `@NAME` as typed; a path made absolute, as the daemon has its own working directory.
fn absolute_socket(text: &str) -> std::io::Result<String> {
    if text.starts_with('@') {
        return Ok(text.to_owned());
    }
    std::path::absolute(text).map(|path| path.display().to_string())
}

pub fn deny(socket: &Path, args: DenyArgs) -> ExitCode {
    match ask(socket, "deny", &Request::Deny { id: args.id }) {
        Ok(Response::Denied { request }) => {
            println!("{request} refused");
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected("deny", &other),
        Err(code) => code,
    }
}

pub fn revoke(socket: &Path, args: RevokeArgs) -> ExitCode {
    let request = Request::Revoke {
        grant: args.id,
        approver: args.approver,
        agent: args.agent,
    };
    match ask(socket, "revoke", &request) {
        Ok(Response::Revoked { grants }) if grants.is_empty() => {
            println!("no grants matched; nothing revoked");
            ExitCode::SUCCESS
        }
        Ok(Response::Revoked { grants }) => {
            println!("revoked {}", grants.join(" "));
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected("revoke", &other),
        Err(code) => code,
    }
}

fn granted(socket: &Path, command: &str, request: &Request) -> ExitCode {
    match ask(socket, command, request) {
        Ok(Response::Granted { grant }) => {
            println!("{}", describe(&grant));
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected(command, &other),
        Err(code) => code,
    }
}

/// The line after an approval or a grant (`kya approve`, `kya grant`, `kya watch`).
pub fn describe(grant: &GrantView) -> String {
    let lasts = if grant.uses_left.is_some() {
        format!("once, before {}", time(grant.expires_ms))
    } else {
        format!("until {}", time(grant.expires_ms))
    };
    let proven = match (grant.approval.as_deref(), grant.key.as_deref()) {
        (Some("ssh-key"), Some(key)) => format!(", signed by {key}"),
        (Some("totp"), _) => ", with an authenticator code".to_owned(),
        _ => String::new(),
    };
    format!(
        "{} granted: agent {} may {} {lasts} (approved by {}{proven})",
        grant.id,
        escape(grant.agent.as_bytes()),
        grant.resource,
        escape(grant.approver.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use crate::{
        ask::tests::{SHOWN, assert_inert},
        grants::tests::grant,
    };

    #[test]
    fn a_confirmation_shows_hostile_names_escaped() {
        let shown = super::describe(&grant());
        assert_inert(&shown);
        assert!(
            shown.starts_with(&format!("g2 granted: agent coder may connect {SHOWN}:443")),
            "{shown}"
        );
    }
}
