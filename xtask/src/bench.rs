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
    /// ABBA rounds per kernel, two without/with pairs each (default 5, or 1 with --quick).
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
        instruction_clock: true,
    };
    println!(
        "bench: the VM runs with `-icount shift=0,sleep=off` on one TCG thread: time inside it \
         counts executed instructions (1 ns each), not host time"
    );
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
    let path = out.join("results.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&results(&reports, args.quick))?,
    )?;
    println!("bench: every figure is in {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// `results.json`: per kernel release, each workload's ratio (with kya / without) as the mean of
/// its pair ratios with a 95% t-interval over the pairs, and kya-bench's whole report beside it.
fn results(reports: &[Value], quick: bool) -> Value {
    let mut kernels = serde_json::Map::new();
    for report in reports {
        let mut workloads = serde_json::Map::new();
        for row in report["workloads"].as_array().into_iter().flatten() {
            let ratios: Vec<f64> = row["pair_ratios"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_f64)
                .collect();
            let (ratio, lo, hi) = mean_ci95(&ratios);
            workloads.insert(
                row["key"].as_str().unwrap_or("?").to_owned(),
                serde_json::json!({
                    "ratio": ratio,
                    "ci95": [lo, hi],
                    "pairs": ratios.len(),
                    "label": row["workload"],
                    "pair_ratios": ratios,
                }),
            );
        }
        kernels.insert(
            report["kernel"].as_str().unwrap_or("?").to_owned(),
            serde_json::json!({ "workloads": workloads, "report": report }),
        );
    }
    serde_json::json!({
        "quick": quick,
        "clock": "qemu -icount shift=0,sleep=off, one TCG thread: 1 ns per instruction",
        "ratio": "mean of ABBA pair ratios; ci95 is Student's t-interval over the pairs",
        "kernels": kernels,
    })
}

/// The mean of `values` and its two-sided 95% confidence interval, Student's t with n-1 degrees
/// of freedom (pairs are few, and their ratios near-normal once the clock counts instructions).
/// Fewer than two values give no interval: NaN bounds.
fn mean_ci95(values: &[f64]) -> (f64, f64, f64) {
    // t(0.975, df) for df = 1..=30; beyond that, within 2% of the normal's 1.96.
    const T975: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    let n = values.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    #[allow(clippy::cast_precision_loss)] // a count of pairs
    let count = n as f64;
    let mean = values.iter().sum::<f64>() / count;
    if n < 2 {
        return (mean, f64::NAN, f64::NAN);
    }
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (count - 1.0);
    let t = T975.get(n - 2).copied().unwrap_or(1.96);
    let half = t * (variance / count).sqrt();
    (mean, mean - half, mean + half)
}

/// The report as the table README's "Performance" section shows.
fn table(report: &Value) -> String {
    let mut out = String::new();
    let clock = &report["clock"];
    let _ = writeln!(
        out,
        "\nclock (instruction-counted): a 10 ms sleep took {:.2} ms; a million additions {:.2} ms",
        number(&clock["sleep_10ms_ns"]) / 1e6,
        number(&clock["million_additions_ns"]) / 1e6,
    );
    let _ = writeln!(
        out,
        "\nkernel {} ({} ABBA rounds; ratio = with kya / without, mean of pair ratios [95% t-interval] (pairs))\n",
        report["kernel"].as_str().unwrap_or("?"),
        report["rounds"]
    );
    let _ = writeln!(
        out,
        "| workload | without kya | with kya | ratio | added | in getppid() |\n|---|---:|---:|---:|---:|---:|"
    );
    for row in report["workloads"].as_array().into_iter().flatten() {
        let ratios: Vec<f64> = row["pair_ratios"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_f64)
            .collect();
        let (ratio, lo, hi) = mean_ci95(&ratios);
        let _ = writeln!(
            out,
            "| {} | {:.0} ns | {:.0} ns | {:.3} [{:.3}–{:.3}] ({}) | {:.0} ns | {:.2} |",
            row["workload"].as_str().unwrap_or("?"),
            number(&row["pristine_ns"]["median"]),
            number(&row["loaded_ns"]["median"]),
            ratio,
            lo,
            hi,
            ratios.len(),
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
         (times inside the VM are instruction counts at 1 ns each, not host time; the ratios are what compare)",
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_interval_is_students_t_over_the_pairs() {
        // mean 1.1, sample sd 0.1, n 4: half-width 3.182 * 0.1 / 2.
        let values = [1.0, 1.1, 1.2, 1.1];
        let (mean, lo, hi) = mean_ci95(&values);
        let sd = (0.02_f64 / 3.0).sqrt();
        let half = 3.182 * sd / 2.0;
        assert!((mean - 1.1).abs() < 1e-12);
        assert!((lo - (1.1 - half)).abs() < 1e-12);
        assert!((hi - (1.1 + half)).abs() < 1e-12);
        assert!(lo < mean && mean < hi);
        let (mean, lo, hi) = mean_ci95(&[1.5, 1.5]);
        assert!((mean - 1.5).abs() < 1e-12 && (lo - 1.5).abs() < 1e-12 && (hi - 1.5).abs() < 1e-12);
        let (mean, lo, _) = mean_ci95(&[2.0]);
        assert!((mean - 2.0).abs() < 1e-12 && lo.is_nan());
    }

    #[test]
    fn results_have_one_entry_per_kernel_and_workload() {
        let report = json!({
            "kernel": "6.12.0-test",
            "workloads": [
                {"workload": "open+close", "key": "open_close_untagged", "pair_ratios": [1.0, 1.2]},
                {"workload": "fork+exec+wait, tagged", "key": "fork_exec_tagged",
                 "pair_ratios": [1.1, 1.1, 1.1]},
            ],
        });
        let out = results(&[report], true);
        let workloads = &out["kernels"]["6.12.0-test"]["workloads"];
        let open = &workloads["open_close_untagged"];
        assert!((open["ratio"].as_f64().unwrap() - 1.1).abs() < 1e-12);
        assert_eq!(open["pairs"], 2);
        let ci = open["ci95"].as_array().unwrap();
        assert_eq!(ci.len(), 2);
        let half = 12.706 * 0.02_f64.sqrt() / 2_f64.sqrt();
        assert!((ci[0].as_f64().unwrap() - (1.1 - half)).abs() < 1e-9);
        assert!((ci[1].as_f64().unwrap() - (1.1 + half)).abs() < 1e-9);
        assert_eq!(workloads["fork_exec_tagged"]["pairs"], 3);
        assert_eq!(workloads.as_object().unwrap().len(), 2);
    }
}
