//! `kya-bench`: what kya costs, measured inside the test VM against the same kernel without it.
//!
//! - `kya-bench suite [--rounds N] [--quick]`: the whole benchmark (see `suite`); prints one
//!   `KYA-BENCH-JSON {...}` line that `cargo xtask bench` collects.
//! - `kya-bench worker WORKLOAD ...`: one measured loop in its own process (run untagged, or
//!   as an agent through `kya run`).
mod floor;
mod pipeline;
mod programs;
mod suite;
mod workloads;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |index: usize| args.get(index).map_or("", String::as_str);
    let result = match arg(0) {
        "suite" => {
            let quick = args.iter().any(|arg| arg == "--quick");
            let rounds = args
                .iter()
                .position(|arg| arg == "--rounds")
                .and_then(|index| args.get(index + 1))
                .and_then(|value| value.parse().ok())
                .unwrap_or(if quick { 1 } else { 3 });
            // Read on the thread clocks, a turn's figure repeats to within 0.1%, so a quarter
            // of the iterations of the host-clock days and three rounds (six pairs) resolve
            // every ratio well inside 2%; the daemon's start each round is most of a round.
            let size = suite::Size {
                rounds,
                scale: if quick { 3 } else { 25 },
                flood_seconds: if quick { 0.25 } else { 1.0 },
            };
            suite::run(size).map(|report| format!("KYA-BENCH-JSON {report}"))
        }
        "worker" => worker(&args[1..]),
        _ => Err("usage: kya-bench suite [--rounds N] [--quick] | kya-bench worker ...".to_owned()),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("kya-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

fn worker(args: &[String]) -> Result<String, String> {
    let arg = |index: usize| args.get(index).map_or("", String::as_str);
    match arg(0) {
        "flood" => {
            let rate = arg(2).parse().map_err(|_| "flood PATH RATE SECONDS")?;
            let seconds = arg(3).parse().map_err(|_| "flood PATH RATE SECONDS")?;
            workloads::flood(arg(1), rate, seconds).map(|attempts| format!("attempts {attempts}"))
        }
        "wait-open" => workloads::wait_open(arg(1)).map(|at| format!("allowed_at {at}")),
        name => {
            let iterations = arg(1)
                .parse()
                .map_err(|_| "worker WORKLOAD ITERATIONS [ARG]")?;
            workloads::run(name, iterations, arg(2))
        }
    }
}
