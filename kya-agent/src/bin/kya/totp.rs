//! `kya totp enroll USER` / `kya totp remove USER`: the authenticators whose codes approve for
//! agents with approval = "totp". Root only; the daemon keeps the secrets in its state
//! directory, which agents cannot read.
use std::{path::Path, process::ExitCode};

use kya_agent::{
    control::protocol::{Request, Response},
    text::escape,
};

use crate::ask::{ask, unexpected};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Make a new secret for USER (replacing theirs) and print it, with an otpauth:// URI for
    /// an authenticator app. Root only.
    Enroll {
        #[arg(value_name = "USER", value_hint = clap::ValueHint::Username)]
        user: String,
    },
    /// Forget USER's secret: their codes no longer approve. Root only.
    Remove {
        #[arg(value_name = "USER", value_hint = clap::ValueHint::Username)]
        user: String,
    },
}

pub fn run(socket: &Path, args: &Args) -> ExitCode {
    match &args.command {
        Command::Enroll { user } => {
            let request = Request::TotpEnroll { user: user.clone() };
            match ask(socket, "totp enroll", &request) {
                Ok(Response::TotpEnrolled { user, secret, uri }) => {
                    println!("user: {}", escape(user.as_bytes()));
                    println!("secret: {secret}");
                    println!("uri: {}", escape(uri.as_bytes()));
                    eprintln!(
                        "add it to the user's authenticator app (the secret, or the URI as a QR \
                         code); codes are 6 digits every 30 seconds, each accepted once"
                    );
                    ExitCode::SUCCESS
                }
                Ok(other) => unexpected("totp enroll", &other),
                Err(code) => code,
            }
        }
        Command::Remove { user } => {
            let request = Request::TotpRemove { user: user.clone() };
            match ask(socket, "totp remove", &request) {
                Ok(Response::TotpRemoved { user, existed }) => {
                    if existed {
                        println!("removed the TOTP secret of {}", escape(user.as_bytes()));
                    } else {
                        println!("{} had no TOTP secret", escape(user.as_bytes()));
                    }
                    ExitCode::SUCCESS
                }
                Ok(other) => unexpected("totp remove", &other),
                Err(code) => code,
            }
        }
    }
}
