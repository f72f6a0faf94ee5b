//! `cargo xtask bench`: what kya costs, measured in the test VM on each test kernel against the
//! same kernel without kya, in the same boot (`kya-bench suite` does the measuring). Prints a
//! table per kernel and writes every figure to `target/bench/results.json`.

use std::{fmt::Write as _, path::Path, process::ExitCode, time::Duration};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::{
    build,
    initramfs::Initramfs,
    setup,
    vm::{self, Machine, WorkDir},
};

/// The line `kya-bench suite` prints its report on.
const MARKER: &str = "KYA-BENCH-JSON ";

#[derive(clap::Args)]
pub struct Args {
    /// Measure on this kernel only: "6.1", "6.12" or the path of a vmlinuz.
    #[arg(long)]
    kernel: Option<String>,
    /// A few seconds of measuring, one round, one kernel unless --kernel says otherwise: proves
    /// the benchmark runs, not what kya costs.
    #[arg(long)]
    quick: bool,
    /// Pristine/loaded turns per kernel (default 5, or 1 with --quick).
    #[arg(long)]
    rounds: Option<usize>,
    /// Seconds each kernel's VM may run.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let setup = setup::run()?;
    let kernels = match (&args.kernel, args.quick) {
        (Some(choice), _) => vec![setup.kernel(choice)?],
        (None, true) => vec![setup.kernel("6.12")?],
        (None, false) => setup.kernels.clone(),
    };
    println!("bench: building optimized binaries");
    let binaries = build::bench_binaries()?;
    let dir = WorkDir::new("bench")?;
    let mut initramfs = Initramfs::new(&dir.path.join("root"), &setup.busybox)?;
    for binary in [&binaries.kya, &binaries.kya_agent, &binaries.kya_bench] {
        initramfs.add_tool(binary)?;
    }
    let mut command = vec!["kya-bench".to_owned(), "suite".to_owned()];
    if args.quick {
        command.push("--quick".to_owned());
    }
    if let Some(rounds) = args.rounds {
        command.extend(["--rounds".to_owned(), rounds.to_string()]);
    }
    initramfs.set_command(&command)?;
    let initrd = dir.path.join("initrd.cpio");
    initramfs.pack(&initrd)?;
    let machine = Machine {
        memory_mib: 2048,
        timeout: Duration::from_secs(args.timeout),
        console_prefix: None,
    };
    let mut reports = Vec::new();
    for kernel in &kernels {
        let log = dir
            .path
            .join(format!("console-{}.log", kernel.label.replace('/', "_")));
        let outcome = vm::boot(kernel, &initrd, &machine, &log);
        let status = outcome.status?;
        let Some(report) = outcome
            .console
            .lines()
            .find_map(|line| Some(&line[line.find(MARKER)? + MARKER.len()..]))
        else {
            bail!(
                "kya-bench on kernel {} printed no report (exit status {status}); see {}",
                kernel.label,
                log.display()
            );
        };
        let report: Value = serde_json::from_str(report.trim())
            .with_context(|| format!("kya-bench's report on kernel {}", kernel.label))?;
        println!("{}", table(&report));
        reports.push(report);
    }
    let out = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask lives inside the workspace")?
        .join("target/bench");
    std::fs::create_dir_all(&out)?;
    let results = out.join("results.json");
    std::fs::write(
        &results,
        serde_json::to_string_pretty(&serde_json::json!({
            "quick": args.quick,
            "kernels": reports,
        }))?,
    )?;
    println!("bench: every figure is in {}", results.display());
    Ok(ExitCode::SUCCESS)
}

/// The report as the table README's "Performance" section shows.
fn table(report: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nkernel {} ({} rounds; ratio = with kya / without, median [min–max])\n",
        report["kernel"].as_str().unwrap_or("?"),
        report["rounds"]
    );
    let _ = writeln!(
        out,
        "| workload | without kya | with kya | ratio | added | in getppid() |\n|---|---:|---:|---:|---:|---:|"
    );
    for row in report["workloads"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "| {} | {:.0} ns | {:.0} ns | {:.3} [{:.3}–{:.3}] | {:.0} ns | {:.2} |",
            row["workload"].as_str().unwrap_or("?"),
            number(&row["pristine_ns"]["median"]),
            number(&row["loaded_ns"]["median"]),
            number(&row["ratio"]["median"]),
            number(&row["ratio"]["min"]),
            number(&row["ratio"]["max"]),
            number(&row["added_ns"]),
            number(&row["added_null_syscalls"]),
        );
    }
    let _ = writeln!(out, "\n| program | ns per call | calls |\n|---|---:|---:|");
    if let Some(programs) = report["programs_ns_per_call"].as_object() {
        for (name, cost) in programs {
            let _ = writeln!(
                out,
                "| {name} | {:.0} | {} |",
                number(&cost["ns_per_call"]),
                cost["calls"]
            );
        }
    }
    let pipeline = &report["pipeline"];
    let _ = writeln!(
        out,
        "\nevent pipeline: {:.0} denied attempts/s absorbed with no loss",
        number(&pipeline["absorbed_without_loss_per_s"])
    );
    for step in pipeline["steps"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  flood at {:.0}/s: {} attempts, {} counted, {} events lost ({:.1}%; {} of them over \
             the agent's event budget)",
            number(&step["achieved_per_s"]),
            step["attempts"],
            step["counted"],
            step["events_lost"],
            number(&step["loss_ratio"]) * 100.0,
            step["events_lost_over_budget"]
        );
    }
    let daemon = &report["daemon"];
    let approve = &report["approve"];
    let _ = writeln!(
        out,
        "daemon: start to enforcing {:.0} ms; resident memory {:.1} MiB at rest, {:.1} MiB peak under flood\n\
         approval: `kya approve` takes {:.1} ms; the agent's retry succeeds {:.1} ms after it returns\n\
         (times inside the emulated VM are inflated; the ratios are what compare)",
        number(&daemon["start_to_enforcing_ms"]["median"]),
        number(&daemon["rss_rest_kb"]["median"]) / 1024.0,
        number(&pipeline["rss_flood_peak_kb"]) / 1024.0,
        number(&approve["approve_call_ms"]["median"]),
        number(&approve["return_to_allowed_ms"]["median"]),
    );
    out
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}
