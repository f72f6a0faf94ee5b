//! `kya reload`: make the running daemon read its config file again.
use std::{path::Path, process::ExitCode};

use kya_agent::control::protocol::{Request, Response};

use crate::ask::{ask, unexpected};

pub fn run(socket: &Path) -> ExitCode {
    match ask(socket, "reload", &Request::Reload {}) {
        Ok(Response::Reloaded {
            config,
            generation,
            agents,
            adopted,
        }) => {
            println!(
                "reloaded {config}: {agents} agent(s) in force (reload {generation}); {adopted} \
                 running process(es) newly tagged"
            );
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected("reload", &other),
        Err(code) => code,
    }
}
