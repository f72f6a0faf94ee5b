//! `cargo xtask bench`: what kya costs, measured in the test VM on each test kernel against the
//! same kernel without kya, in the same boot (`kya-bench suite` does the measuring). Prints a
//! table per kernel and writes every figure to `target/bench/results.json`.

use std::{fmt::Write as _, path::Path, process::ExitCode, time::Duration};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

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
    /// Rounds per kernel (pristine, floor, kya, kya, floor, pristine turns: two pairs each;
    /// default 3, or 1 with --quick).
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
        "bench: the VM runs with `-icount shift=0,sleep=off` on one TCG thread and one vCPU: \
         time inside it counts executed instructions (1 ns each), not host time. Clocks: {CLOCKS}"
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

/// What each clock is, for `results.json` and the output.
const CLOCKS: &str = "thread: the worker thread's CPU time (CLOCK_THREAD_CPUTIME_ID), for \
    system-call loops, whose work (the system call and every BPF program it runs) is all in \
    that thread; thread_children: that plus the CPU time of the children it reaped \
    (RUSAGE_CHILDREN), for fork+exec+wait; monotonic: CLOCK_MONOTONIC, everything the guest ran \
    meanwhile (the daemon, kernel threads), given for comparison only";

/// `results.json`: per kernel release, each workload's ratio (with kya / without) as the mean of
/// its pair ratios with a 95% t-interval over the pairs, the same for the floor (floor /
/// without) and for kya's own work (with kya / floor), the headline ratio on every clock, and
/// kya-bench's whole report beside it.
fn results(reports: &[Value], quick: bool) -> Value {
    let mut kernels = serde_json::Map::new();
    for report in reports {
        let mut workloads = serde_json::Map::new();
        for row in report["workloads"].as_array().into_iter().flatten() {
            let (ratio, ratios) = interval(&row["pair_ratios"]);
            let (floor, floor_ratios) = interval(&row["floor_pair_ratios"]);
            let (own, own_ratios) = interval(&row["kya_over_floor_pair_ratios"]);
            let by_clock: serde_json::Map<String, Value> = row["pair_ratios_by_clock"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(clock, ratios)| {
                    let ((mean, lo, hi), _) = interval(ratios);
                    (clock.clone(), json!({ "ratio": mean, "ci95": [lo, hi] }))
                })
                .collect();
            workloads.insert(
                row["key"].as_str().unwrap_or("?").to_owned(),
                json!({
                    "ratio": ratio.0,
                    "ci95": [ratio.1, ratio.2],
                    "pairs": ratios.len(),
                    "label": row["workload"],
                    "clock": row["clock"],
                    "pair_ratios": ratios,
                    "floor_ratio": floor.0,
                    "floor_ci95": [floor.1, floor.2],
                    "floor_pair_ratios": floor_ratios,
                    "kya_over_floor_ratio": own.0,
                    "kya_over_floor_ci95": [own.1, own.2],
                    "kya_over_floor_pair_ratios": own_ratios,
                    "ratio_by_clock": by_clock,
                }),
            );
        }
        kernels.insert(
            report["kernel"].as_str().unwrap_or("?").to_owned(),
            json!({ "workloads": workloads, "programs": programs(report), "report": report }),
        );
    }
    json!({
        "quick": quick,
        "vm": "qemu -icount shift=0,sleep=off, one TCG thread, one vCPU: 1 ns per instruction",
        "clocks": CLOCKS,
        "ratio": "mean of pair ratios; ci95 is Student's t-interval over the pairs. ratio: with \
            kya / without; floor_ratio: floor (kya's programs attached, returning at once) / \
            without; kya_over_floor_ratio: with kya / floor (kya's own work)",
        "kernels": kernels,
    })
}

/// The mean and 95% interval of a JSON array of ratios, and the ratios.
fn interval(ratios: &Value) -> ((f64, f64, f64), Vec<f64>) {
    let ratios: Vec<f64> = ratios
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .collect();
    (mean_ci95(&ratios), ratios)
}

/// Per program: instructions per call (untagged workloads, tagged ones, the floor's program),
/// calls, and sizes (verified instructions, translated and JIT-compiled bytes).
fn programs(report: &Value) -> Value {
    let programs = &report["programs"];
    let mut names: Vec<&String> = ["untagged", "tagged", "floor", "sizes"]
        .iter()
        .filter_map(|part| programs[part].as_object())
        .flat_map(serde_json::Map::keys)
        .collect();
    names.sort();
    names.dedup();
    let mut out = serde_json::Map::new();
    for name in names {
        let cost = |part: &str| {
            let cost = &programs[part][name];
            json!({ "instructions_per_call": cost["ns_per_call"], "calls": cost["calls"] })
        };
        let sizes = &programs["sizes"][name];
        out.insert(
            name.clone(),
            json!({
                "untagged": cost("untagged"),
                "tagged": cost("tagged"),
                "floor": cost("floor"),
                "verified_insns": sizes["verified_insns"],
                "translated_bytes": sizes["translated_bytes"],
                "jited_bytes": sizes["jited_bytes"],
            }),
        );
    }
    Value::Object(out)
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

/// The report as the tables README's "Performance" section describes.
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
        "\nkernel {} ({} rounds of pristine, floor, kya, kya, floor, pristine turns)\n\
         kya/pristine is the headline; floor/pristine the hooks' own cost with kya's programs \
         returning at once; kya/floor kya's own work. Each: mean of pair ratios [95% \
         t-interval] (pairs). Times are medians in ns (= instructions) per operation, on the \
         row's clock; kya's own = with kya - floor.\n",
        report["kernel"].as_str().unwrap_or("?"),
        report["rounds"]
    );
    let _ = writeln!(
        out,
        "| workload | clock | without kya | floor | with kya | kya/pristine | floor/pristine | \
         kya/floor | kya's own | in getppid() |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let rows = report["workloads"].as_array().into_iter().flatten();
    for row in rows.clone() {
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {:.0} | {:.2} |",
            row["workload"].as_str().unwrap_or("?"),
            row["clock"].as_str().unwrap_or("?"),
            number(&row["pristine_ns"]["median"]),
            number(&row["floor_ns"]["median"]),
            number(&row["loaded_ns"]["median"]),
            ratio_cell(&row["pair_ratios"]),
            ratio_cell(&row["floor_pair_ratios"]),
            ratio_cell(&row["kya_over_floor_pair_ratios"]),
            number(&row["added_over_floor_ns"]),
            number(&row["added_null_syscalls"]),
        );
    }
    let _ = writeln!(
        out,
        "\nkya/pristine on each clock (the table above uses the row's own clock):\n\n\
         | workload | thread | thread+children | monotonic |\n|---|---:|---:|---:|"
    );
    for row in rows {
        let by_clock = &row["pair_ratios_by_clock"];
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            row["workload"].as_str().unwrap_or("?"),
            ratio_cell(&by_clock["thread"]),
            ratio_cell(&by_clock["thread_children"]),
            ratio_cell(&by_clock["monotonic"]),
        );
    }
    program_table(&mut out, &programs(report));
    rest(&mut out, report);
    out
}

/// `mean [lo–hi] (n)` of a JSON array of pair ratios.
fn ratio_cell(ratios: &Value) -> String {
    let ((mean, lo, hi), ratios) = interval(ratios);
    if ratios.is_empty() {
        return "–".to_owned();
    }
    format!("{mean:.3} [{lo:.3}–{hi:.3}] ({})", ratios.len())
}

/// The per-program table: instructions per call and calls (untagged and tagged workloads with
/// kya; the floor's program over the untagged ones), and the program's sizes.
fn program_table(out: &mut String, programs: &Value) {
    let _ = writeln!(
        out,
        "\nper program, with BPF run-time statistics on (instructions per call include the \
         statistics' own clock reads, which the floor's do-nothing programs show):\n\n\
         | program | untagged: insns/call | calls | tagged: insns/call | calls | floor: \
         insns/call | verified insns | translated B | JIT B |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (name, program) in programs.as_object().into_iter().flatten() {
        let cell = |value: &Value| match value.as_f64() {
            Some(value) => format!("{value:.0}"),
            None => "–".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&program["untagged"]["instructions_per_call"]),
            cell(&program["untagged"]["calls"]),
            cell(&program["tagged"]["instructions_per_call"]),
            cell(&program["tagged"]["calls"]),
            cell(&program["floor"]["instructions_per_call"]),
            cell(&program["verified_insns"]),
            cell(&program["translated_bytes"]),
            cell(&program["jited_bytes"]),
        );
    }
}

/// The event pipeline, the daemon's memory and start, and the approval latency.
fn rest(out: &mut String, report: &Value) {
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
                {"workload": "open+close", "key": "open_close_untagged", "clock": "thread",
                 "pair_ratios": [1.0, 1.2], "floor_pair_ratios": [1.01, 1.03],
                 "kya_over_floor_pair_ratios": [1.0, 1.1],
                 "pair_ratios_by_clock": {"thread": [1.0, 1.2], "monotonic": [0.5, 1.5]}},
                {"workload": "fork+exec+wait, tagged", "key": "fork_exec_tagged",
                 "clock": "thread_children", "pair_ratios": [1.1, 1.1, 1.1]},
            ],
            "programs": {
                "untagged": {"file_open": {"ns_per_call": 120.0, "calls": 40}},
                "tagged": {"file_open": {"ns_per_call": 900.0, "calls": 20}},
                "floor": {"file_open": {"ns_per_call": 60.0, "calls": 40}},
                "sizes": {"file_open": {"verified_insns": 300, "translated_bytes": 2000,
                                        "jited_bytes": 1200}},
            },
        });
        let out = results(&[report], true);
        let kernel = &out["kernels"]["6.12.0-test"];
        let workloads = &kernel["workloads"];
        let open = &workloads["open_close_untagged"];
        assert!((open["ratio"].as_f64().unwrap() - 1.1).abs() < 1e-12);
        assert_eq!(open["pairs"], 2);
        assert_eq!(open["clock"], "thread");
        let ci = open["ci95"].as_array().unwrap();
        assert_eq!(ci.len(), 2);
        let half = 12.706 * 0.02_f64.sqrt() / 2_f64.sqrt();
        assert!((ci[0].as_f64().unwrap() - (1.1 - half)).abs() < 1e-9);
        assert!((ci[1].as_f64().unwrap() - (1.1 + half)).abs() < 1e-9);
        assert!((open["floor_ratio"].as_f64().unwrap() - 1.02).abs() < 1e-12);
        assert_eq!(open["floor_ci95"].as_array().unwrap().len(), 2);
        assert!((open["kya_over_floor_ratio"].as_f64().unwrap() - 1.05).abs() < 1e-12);
        let monotonic = &open["ratio_by_clock"]["monotonic"];
        assert!((monotonic["ratio"].as_f64().unwrap() - 1.0).abs() < 1e-12);
        assert!(monotonic["ci95"][0].as_f64().unwrap() < ci[0].as_f64().unwrap());
        assert_eq!(workloads["fork_exec_tagged"]["pairs"], 3);
        assert_eq!(
            workloads["fork_exec_tagged"]["floor_pair_ratios"],
            json!([])
        );
        assert_eq!(workloads.as_object().unwrap().len(), 2);
        let program = &kernel["programs"]["file_open"];
        assert_eq!(program["untagged"]["instructions_per_call"], 120.0);
        assert_eq!(program["tagged"]["calls"], 20);
        assert_eq!(program["floor"]["instructions_per_call"], 60.0);
        assert_eq!(program["verified_insns"], 300);
        assert_eq!(program["jited_bytes"], 1200);
    }

    #[test]
    fn the_table_shows_every_ratio_with_its_interval() {
        let report = json!({
            "kernel": "6.1.0-test",
            "rounds": 1,
            "workloads": [{"workload": "open+close", "key": "open_close_untagged",
                "clock": "thread", "pair_ratios": [1.0, 1.2],
                "floor_pair_ratios": [1.01, 1.03], "kya_over_floor_pair_ratios": [1.0, 1.1],
                "pair_ratios_by_clock": {"thread": [1.0, 1.2]},
                "pristine_ns": {"median": 1000.0}, "floor_ns": {"median": 1020.0},
                "loaded_ns": {"median": 1100.0}, "added_over_floor_ns": 80.0,
                "added_null_syscalls": 0.3}],
            "programs": {"untagged": {"file_open": {"ns_per_call": 120.0, "calls": 40}}},
        });
        let table = table(&report);
        assert!(
            table.contains(
                "| open+close | thread | 1000 | 1020 | 1100 | 1.100 [-0.171–2.371] (2) | \
                 1.020 [0.893–1.147] (2) | 1.050 [0.415–1.685] (2) | 80 | 0.30 |"
            ),
            "{table}"
        );
        assert!(
            table.contains("| file_open | 120 | 40 | – | – | – | – | – | – |"),
            "{table}"
        );
        assert!(
            table.contains("| open+close | 1.100 [-0.171–2.371] (2) | – | – |"),
            "{table}"
        );
    }
}
