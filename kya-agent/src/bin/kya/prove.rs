//! The proof an approval carries for an agent whose config asks for more than the caller's
//! uid: a signature made here with `ssh-keygen -Y sign` over the daemon's challenge, a signature
//! made elsewhere (`--signature FILE --nonce N`), or an authenticator code (`--totp`).
use std::{
    io::{BufRead as _, IsTerminal as _, Write as _},
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
};

use kya_agent::{
    approvals::challenge::NAMESPACE,
    control::protocol::{Proof, Request, Response},
    text::escape_lines,
};

use crate::ask::{ask, unexpected};

/// The environment variable naming the key to sign approvals with.
const KEY_VARIABLE: &str = "KYA_SSH_KEY";

/// The keys tried in `~/.ssh` when neither --key nor `$KYA_SSH_KEY` names one, in order.
const DEFAULT_KEYS: [&str; 4] = ["id_ed25519_sk", "id_ecdsa_sk", "id_ed25519", "id_ecdsa"];

#[derive(clap::Args, Default)]
pub struct ProofArgs {
    /// Sign the approval with this ssh key (for agents with approval = "ssh-key"); a .pub file
    /// signs through ssh-agent. Default: $KYA_SSH_KEY, else ~/.ssh/id_ed25519_sk, id_ecdsa_sk,
    /// id_ed25519, id_ecdsa.
    #[arg(long, value_name = "PATH", value_hint = clap::ValueHint::FilePath)]
    key: Option<PathBuf>,
    /// Only print the challenge to sign (its text on stdout, the nonce on stderr), to sign it
    /// elsewhere: `ssh-keygen -Y sign -n kya-approval -f KEY FILE`.
    #[arg(long, conflicts_with_all = ["key", "signature", "nonce", "totp"])]
    challenge: bool,
    /// A signature made elsewhere over the challenge text (the FILE.sig of ssh-keygen -Y sign).
    #[arg(long, value_name = "FILE", requires = "nonce", conflicts_with_all = ["key", "totp"], value_hint = clap::ValueHint::FilePath)]
    signature: Option<PathBuf>,
    /// The nonce of the challenge the --signature signs.
    #[arg(long, value_name = "NONCE", requires = "signature")]
    nonce: Option<String>,
    /// The current code of your authenticator (for agents with approval = "totp"); without
    /// it, asked for at a terminal.
    #[arg(long, value_name = "CODE", conflicts_with = "key")]
    totp: Option<String>,
}

/// What to do after [`prepare`].
pub enum Prepared {
    /// Send the approval with this proof (`None`: the caller's uid is enough).
    Send(Option<Proof>),
    /// Nothing to send (the challenge was printed, or preparing failed).
    Done(ExitCode),
}

/// Gets the proof `args` ask for, asking the daemon for a challenge (`challenge`) when needed.
pub fn prepare(socket: &Path, command: &str, args: &ProofArgs, challenge: &Request) -> Prepared {
    if let Some(code) = &args.totp {
        return Prepared::Send(Some(Proof::Totp { code: code.clone() }));
    }
    if let (Some(file), Some(nonce)) = (&args.signature, &args.nonce) {
        return match std::fs::read_to_string(file) {
            Ok(signature) => Prepared::Send(Some(Proof::SshKey {
                nonce: nonce.clone(),
                signature,
            })),
            Err(error) => fail(command, &format!("{}: {error}", file.display())),
        };
    }
    let (approval, text, nonce) = match ask(socket, command, challenge) {
        Ok(Response::Challenge {
            approval,
            text,
            nonce,
            ..
        }) => (approval, text, nonce),
        Ok(other) => return Prepared::Done(unexpected(command, &other)),
        Err(code) => return Prepared::Done(code),
    };
    if args.challenge {
        return print_challenge(command, &approval, &text, nonce.as_deref());
    }
    match (approval.as_str(), nonce) {
        ("ssh-key", Some(nonce)) => {
            eprintln!("signing, for kya-agent:\n{}", escape_lines(&text));
            let key = match key(args.key.as_deref()) {
                Ok(key) => key,
                Err(message) => return fail(command, &message),
            };
            match sign(&key, &text) {
                Ok(signature) => Prepared::Send(Some(Proof::SshKey { nonce, signature })),
                Err(message) => fail(command, &message),
            }
        }
        ("totp", _) => match prompt_code(command) {
            Ok(code) => Prepared::Send(Some(Proof::Totp { code })),
            Err(message) => fail(command, &message),
        },
        _ => Prepared::Send(None),
    }
}

fn print_challenge(command: &str, approval: &str, text: &str, nonce: Option<&str>) -> Prepared {
    let Some(nonce) = nonce else {
        return fail(
            command,
            &format!("this agent's approvals need no signature (approval = \"{approval}\")"),
        );
    };
    print!("{text}");
    eprintln!(
        "nonce {nonce}: sign the text above (saved as FILE) with `ssh-keygen -Y sign -n \
         {NAMESPACE} -f KEY FILE` within 5 minutes, then repeat this command with --nonce \
         {nonce} --signature FILE.sig instead of --challenge"
    );
    Prepared::Done(ExitCode::SUCCESS)
}

fn fail(command: &str, message: &str) -> Prepared {
    eprintln!("kya {command}: {}", escape_lines(message));
    Prepared::Done(ExitCode::FAILURE)
}

/// The key to sign with: `--key`, else `$KYA_SSH_KEY`, else the first usual key in ~/.ssh.
pub fn key(given: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = given {
        return Ok(path.to_owned());
    }
    if let Some(path) = std::env::var_os(KEY_VARIABLE).filter(|path| !path.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|user| user.dir)
        })
        .ok_or("no home directory to find ~/.ssh in; pass --key PATH")?;
    let ssh = home.join(".ssh");
    DEFAULT_KEYS
        .iter()
        .map(|name| ssh.join(name))
        .find(|path| path.exists())
        .ok_or_else(|| {
            format!(
                "this agent's approvals must be signed with your ssh key, and none of {} exists \
                 in {}; pass --key PATH (a .pub file signs through ssh-agent) or set \
                 ${KEY_VARIABLE}",
                DEFAULT_KEYS.join(", "),
                ssh.display()
            )
        })
}

/// Signs `text` with `ssh-keygen -Y sign -n kya-approval -f KEY` (the key's passphrase or
/// security key touch is asked for at the terminal); returns the armored signature.
pub fn sign(key: &Path, text: &str) -> Result<String, String> {
    let mut child = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", NAMESPACE, "-f"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|error| format!("cannot run ssh-keygen (install openssh-client): {error}"))?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(text.as_bytes())
        .map_err(|error| format!("writing to ssh-keygen: {error}"))?;
    let output = child
        .wait_with_output()
        .map_err(|error| format!("ssh-keygen: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "ssh-keygen -Y sign -f {} failed ({}); nothing was approved",
            key.display(),
            output.status
        ));
    }
    String::from_utf8(output.stdout).map_err(|_| "ssh-keygen wrote no text signature".to_owned())
}

/// Asks for the authenticator code at the terminal.
fn prompt_code(command: &str) -> Result<String, String> {
    if !std::io::stdin().is_terminal() {
        return Err(
            "this agent's approvals need your authenticator's code: pass --totp CODE".to_owned(),
        );
    }
    eprint!("kya {command}: authenticator code: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|error| format!("reading the code: {error}"))?;
    Ok(line.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::ProofArgs;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        proof: ProofArgs,
    }

    fn parse(args: &[&str]) -> Result<ProofArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("kya").chain(args.iter().copied())).map(|cli| cli.proof)
    }

    #[test]
    fn proof_options_parse_and_conflict() {
        let key = parse(&["--key", "/k"]).unwrap();
        assert_eq!(key.key.as_deref(), Some(std::path::Path::new("/k")));
        let signed = parse(&["--signature", "/s", "--nonce", "ab"]).unwrap();
        assert_eq!(signed.nonce.as_deref(), Some("ab"));
        assert_eq!(
            parse(&["--totp", "123456"]).unwrap().totp.as_deref(),
            Some("123456")
        );
        assert!(parse(&["--challenge"]).unwrap().challenge);
        // A signature needs its nonce and the other way round; proofs do not mix.
        assert!(parse(&["--signature", "/s"]).is_err());
        assert!(parse(&["--nonce", "ab"]).is_err());
        assert!(parse(&["--key", "/k", "--totp", "1"]).is_err());
        assert!(parse(&["--challenge", "--key", "/k"]).is_err());
        assert!(parse(&["--signature", "/s", "--nonce", "ab", "--totp", "1"]).is_err());
    }

    #[test]
    fn an_explicit_key_wins() {
        assert_eq!(
            super::key(Some(std::path::Path::new("/k"))).unwrap(),
            std::path::PathBuf::from("/k")
        );
    }
}
