//! `kya-agent probe`: can this host enforce?
use std::process::ExitCode;

use kya_agent::kernel::support;

pub fn run() -> ExitCode {
    match support::probe() {
        Ok(()) => {
            println!("kya-agent: this kernel runs kya's BPF LSM programs");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("kya-agent: {reason}");
            ExitCode::FAILURE
        }
    }
}
