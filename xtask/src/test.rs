//! `cargo xtask test`: the unit tests on this host, then the integration tests in a VM on every
//! test kernel (struct layouts differ between kernels, so one kernel proves little). Ends with a line per kernel (with its duration and its slowest
//! tests), the whole run's duration and a total line `N passed, M failed`, which CI reads. A VM
//! that fails, an executable that crashes and a kernel on which no test ran all count as
//! failures.

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{ExitCode, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};

use crate::{
    build, cmd, helpers,
    initramfs::Initramfs,
    kernels::Kernel,
    modules, run, setup,
    vm::{self, Machine, WorkDir},
};

/// Runs the test executables in the guest; see the script for the lines it prints.
const RUN_TESTS: &str = include_str!("run-tests.sh");

#[derive(clap::Args)]
pub struct Args {
    /// Run the integration tests on this kernel only: "6.1", "6.12" or the path of a vmlinuz.
    #[arg(long)]
    kernel: Option<String>,
    /// Seconds each kernel's VM may run before it is killed and counts as failed (the whole
    /// suite takes about 5 minutes on 2 cores).
    #[arg(long, default_value_t = 1200)]
    timeout: u64,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 2048)]
    memory: u32,
    /// Boot the kernels' VMs at the same time rather than one after the other: on two cores
    /// the whole run ends about a minute sooner, but each test takes longer (the two VMs share
    /// the CPUs, and a daemon start verifies its programs on both vCPUs).
    #[arg(long)]
    parallel: bool,
    /// Passed to every integration test executable after `--`, e.g. a test-name filter.
    #[arg(last = true, value_name = "FILTER")]
    filter: Vec<String>,
}

/// How many of the slowest tests each kernel's summary names.
const SLOWEST_SHOWN: usize = 5;

/// Tests that passed and failed in one place, and what went wrong besides failing tests.
#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
    problems: Vec<String>,
    /// Each test's duration as libtest reported it (`--report-time`), in the order they ran.
    durations: Vec<(String, Duration)>,
    /// How long the place took, start to end (for a VM: booting included).
    elapsed: Duration,
}

impl Tally {
    /// Something that is not a test but must fail the run all the same.
    fn problem(&mut self, what: String) {
        self.failed += 1;
        self.problems.push(what);
    }

    fn line(&self) -> String {
        format!("{} passed, {} failed", self.passed, self.failed)
    }

    /// The slowest tests, slowest first, as `name (1.2 s)`.
    fn slowest(&self) -> Vec<String> {
        let mut durations: Vec<_> = self.durations.iter().collect();
        durations.sort_by_key(|(_, took)| std::cmp::Reverse(*took));
        durations
            .into_iter()
            .take(SLOWEST_SHOWN)
            .map(|(name, took)| format!("{name} ({:.1} s)", took.as_secs_f64()))
            .collect()
    }
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let started = Instant::now();
    let setup = setup::run()?;
    let kernels = match &args.kernel {
        Some(choice) => vec![setup.kernel(choice)?],
        None => setup.kernels.clone(),
    };

    println!("test: unit tests on the host");
    let unit = unit_tests()?;

    println!("test: building the integration tests");
    let dir = WorkDir::new("test")?;
    let initrd = integration_initramfs(&setup, &kernels, &args.filter, &dir.path);
    if let Err(error) = &initrd {
        eprintln!("error: {error:#}");
    }
    let machine = Machine {
        memory_mib: args.memory,
        timeout: Duration::from_secs(args.timeout),
        console_prefix: None,
        instruction_clock: false,
    };
    let results = on_kernels(kernels, &initrd, &machine, &dir.path, args.parallel);
    let total = report(&unit, &results, started.elapsed());
    Ok(if total.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs the integration tests on every kernel, one VM after the other or all at once
/// (`parallel`). Console lines are prefixed with the kernel.
fn on_kernels(
    kernels: Vec<Kernel>,
    initrd: &Result<PathBuf>,
    machine: &Machine,
    dir: &Path,
    parallel: bool,
) -> Vec<(Kernel, Tally)> {
    let run = |kernel: Kernel| {
        let machine = Machine {
            console_prefix: Some(format!("[{}] ", kernel.label)),
            ..machine.clone()
        };
        let tally = match initrd {
            Ok(initrd) => on_kernel(&kernel, initrd, &machine, dir),
            Err(error) => {
                let mut tally = Tally::default();
                tally.problem(format!(
                    "the integration tests could not be built: {}",
                    first_line(error)
                ));
                tally
            }
        };
        (kernel, tally)
    };
    if !parallel {
        return kernels.into_iter().map(run).collect();
    }
    thread::scope(|scope| {
        let runs: Vec<_> = kernels
            .into_iter()
            .map(|kernel| scope.spawn(|| run(kernel)))
            .collect();
        runs.into_iter()
            .map(|run| run.join().expect("a kernel's test run panicked"))
            .collect()
    })
}

/// Prints a summary per place (counts, duration, average and slowest tests) and for the whole
/// run, ending with the total line CI reads; returns the total.
fn report(unit: &Tally, results: &[(Kernel, Tally)], elapsed: Duration) -> Tally {
    println!();
    let mut total = Tally::default();
    for (name, tally) in std::iter::once(("unit tests (host)".to_owned(), unit)).chain(
        results
            .iter()
            .map(|(k, t)| (format!("kernel {} ({})", k.label, k.release), t)),
    ) {
        println!(
            "{name}: {} in {:.0} s",
            tally.line(),
            tally.elapsed.as_secs_f64()
        );
        if !tally.durations.is_empty() {
            let average = tally
                .durations
                .iter()
                .map(|(_, took)| *took)
                .sum::<Duration>()
                / u32::try_from(tally.durations.len()).unwrap_or(u32::MAX);
            let mut sorted: Vec<Duration> = tally.durations.iter().map(|(_, took)| *took).collect();
            sorted.sort();
            println!(
                "  {} tests timed, {:.1} s on average, {:.1} s the median; slowest: {}",
                tally.durations.len(),
                average.as_secs_f64(),
                sorted[sorted.len() / 2].as_secs_f64(),
                tally.slowest().join(", ")
            );
        }
        for problem in &tally.problems {
            println!("  - {problem}");
        }
        total.passed += tally.passed;
        total.failed += tally.failed;
    }
    for (kernel, tally) in results {
        total.durations.extend(
            tally
                .durations
                .iter()
                .map(|(name, took)| (format!("[{}] {name}", kernel.label), *took)),
        );
    }
    println!(
        "the whole run took {:.0} s (set-up and builds included); slowest tests: {}",
        elapsed.as_secs_f64(),
        total.slowest().join(", ")
    );
    println!("{}", total.line());
    total
}

/// Every workspace test that needs no kernel support: kya-tests needs the VM, and kya-ebpf only
/// builds for the BPF target. `--no-fail-fast`: one crate's failure must not hide the others'.
fn unit_tests() -> Result<Tally> {
    let started = Instant::now();
    let mut command = cmd::cargo();
    command
        .args([
            "test",
            "--workspace",
            "--no-fail-fast",
            "--exclude",
            "kya-tests",
            "--exclude",
            "kya-ebpf",
        ])
        .stdout(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("could not start `{}`", cmd::describe(&command)))?;
    let mut tally = Tally::default();
    // Echo libtest's output as it comes, counting its result lines on the way.
    for line in BufReader::new(child.stdout.take().expect("stdout is piped")).lines() {
        let line = line?;
        println!("{line}");
        if let Some((passed, failed)) = libtest_result(&line) {
            tally.passed += passed;
            tally.failed += failed;
        }
    }
    let status = child.wait()?;
    if !status.success() && tally.failed == 0 {
        tally.problem(format!(
            "`{}` failed ({status}) without a failing test: see above",
            cmd::describe(&command)
        ));
    }
    tally.elapsed = started.elapsed();
    Ok(tally)
}

/// The workspace's own sources, copied into the test VM at `/kya/workspace`.
const WORKSPACE_SOURCES: &[&str] = &[
    "Cargo.toml",
    "README.md",
    "kya-agent/src",
    "kya-common/src",
    "kya-ebpf/src",
    "tests/src",
    "tests/tests",
    "xtask/src",
];

/// The filesystem tools the filesystem tests run in the guest, where busybox's applets cannot
/// go (`/usr/local/sbin` holds none of them).
const MKFS_TOOLS: [(&str, &str); 3] = [
    ("/usr/sbin/mkfs.btrfs", "/usr/local/sbin/mkfs.btrfs"),
    ("/usr/sbin/mkfs.xfs", "/usr/local/sbin/mkfs.xfs"),
    ("/usr/sbin/mke2fs", "/usr/local/sbin/mke2fs"),
];

/// Builds everything and packs one initramfs that all `kernels` boot.
fn integration_initramfs(
    setup: &setup::Setup,
    kernels: &[Kernel],
    filter: &[String],
    dir: &Path,
) -> Result<PathBuf> {
    let binaries = build::binaries()?;
    let tests = build::test_executables()?;
    let mut initramfs = Initramfs::new(&dir.join("root"), &setup.busybox)?;
    for binary in [&binaries.kya, &binaries.kya_agent, &binaries.kya_probe] {
        initramfs.add_tool(binary)?;
    }
    for test in &tests {
        initramfs.add_executable(&test.path, &format!("/kya/tests/{}", test.name))?;
    }
    for (host, guest) in MKFS_TOOLS {
        initramfs.add_executable(Path::new(host), guest)?;
    }
    helpers::add(&mut initramfs)?;
    crate::accounts::add(&mut initramfs)?;
    for kernel in kernels {
        modules::add(&mut initramfs, kernel, &modules::FILESYSTEM_TESTS)?;
    }
    // An ordinary tree for the tests to read as an agent (no file of it may be refused).
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask lives inside the workspace")?;
    for source in WORKSPACE_SOURCES {
        initramfs.add_path(&workspace.join(source), &format!("/kya/workspace/{source}"))?;
    }
    initramfs.write("/kya/run-tests.sh", RUN_TESTS, 0o755)?;
    // The `demo` kernel test runs the demo as `cargo xtask run` does.
    initramfs.write(run::DEMO_GUEST_PATH, run::DEMO, 0o755)?;
    let command: Vec<String> = ["sh", "/kya/run-tests.sh"]
        .into_iter()
        .map(str::to_owned)
        .chain(filter.iter().cloned())
        .collect();
    initramfs.set_command(&command)?;
    let initrd = dir.join("initrd.cpio");
    initramfs.pack(&initrd)?;
    Ok(initrd)
}

fn on_kernel(kernel: &Kernel, initrd: &Path, machine: &Machine, dir: &Path) -> Tally {
    let log_name = format!("console-{}.log", kernel.label.replace('/', "_"));
    let started = Instant::now();
    let outcome = vm::boot(kernel, initrd, machine, &dir.join(log_name));
    let mut tally = guest_results(&outcome.console);
    tally.elapsed = started.elapsed();
    match outcome.status {
        Ok(0) => {}
        // A failing executable already counted; this catches a script that failed otherwise.
        Ok(status) if tally.failed == 0 => {
            tally.problem(format!("the test script exited with status {status}"));
        }
        Ok(_) => {}
        Err(error) => {
            eprintln!("error: {error:#}");
            tally.problem(first_line(&error));
        }
    }
    if tally.passed + tally.failed == 0 {
        tally.problem("no integration test ran".to_owned());
    }
    tally
}

/// Adds up the libtest results between run-tests.sh's BEGIN and END lines. An executable that
/// exits non-zero without a failed test crashed; one that never ends took the VM down with it.
fn guest_results(console: &str) -> Tally {
    let mut tally = Tally::default();
    // The executable running now, and the failures counted before it started.
    let mut running: Option<(String, u64)> = None;
    // The test whose result line has not come yet.
    let mut test: Option<String> = None;
    for line in console.lines() {
        if let Some((name, rest)) = after(line, "test ").and_then(|rest| rest.split_once(" ... ")) {
            test = Some(name.to_owned());
            if let Some(took) = reported_time(rest) {
                tally.durations.push((name.to_owned(), took));
                test = None;
            }
            continue;
        }
        if let Some(took) = reported_time(line)
            && let Some(name) = test.take()
        {
            tally.durations.push((name, took));
        }
        if let Some(name) = after(line, "KYA-TEST-BEGIN ") {
            running = Some((name.trim().to_owned(), tally.failed));
        } else if let Some(end) = after(line, "KYA-TEST-END ") {
            let (name, code) = end.trim().rsplit_once(' ').unwrap_or((end, "?"));
            let failed_before = running.take().map_or(tally.failed, |(_, failed)| failed);
            if code != "0" && tally.failed == failed_before {
                tally.problem(format!(
                    "{name} exited with status {code} without reporting a failed test"
                ));
            }
        } else if let Some((passed, failed)) = libtest_result(line) {
            tally.passed += passed;
            tally.failed += failed;
        }
    }
    if let Some((name, _)) = running {
        tally.problem(format!("{name} never finished"));
    }
    tally
}

/// The duration in libtest's `--report-time` result: `ok <1.234s>` or `FAILED <1.234s>`,
/// wherever it lands in the line (a daemon's log line can come before it).
fn reported_time(line: &str) -> Option<Duration> {
    let start = ["ok <", "FAILED <"]
        .iter()
        .find_map(|result| line.find(result).map(|at| at + result.len()))?;
    let seconds = line[start..].split_once("s>")?.0;
    Duration::try_from_secs_f64(seconds.parse().ok()?).ok()
}

/// `(passed, failed)` from libtest's `test result: ok. 3 passed; 1 failed; 0 ignored; ...`.
fn libtest_result(line: &str) -> Option<(u64, u64)> {
    let summary = after(line, "test result: ")?;
    let (mut passed, mut failed) = (None, None);
    for part in summary.split(';') {
        match part.split_whitespace().collect::<Vec<_>>().as_slice() {
            [.., count, "passed"] => passed = count.parse().ok(),
            [.., count, "failed"] => failed = count.parse().ok(),
            _ => {}
        }
    }
    Some((passed?, failed?))
}

/// The rest of `line` after `marker`, wherever it starts: kernel messages on the console can
/// land in front of it.
fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    Some(&line[line.find(marker)? + marker.len()..])
}

fn first_line(error: &anyhow::Error) -> String {
    error
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libtest_summaries() {
        let ok = "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s";
        assert_eq!(libtest_result(ok), Some((12, 0)));
        let failed = "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s\r";
        assert_eq!(libtest_result(failed), Some((3, 2)));
        assert_eq!(libtest_result("test foo ... ok"), None);
    }

    #[test]
    fn counts_results_crashes_and_hangs() {
        let console = "\
KYA-TEST-BEGIN connect\r
running 2 tests\r
test egress::tcp ... ok <1.500s>\r
test egress::udp ... 2026-12-06T02:30:44Z  WARN kya_agent: denied\r
ok <0.250s>\r
test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.5s\r
KYA-TEST-END connect 0\r
KYA-TEST-BEGIN exec\r
test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.5s\r
KYA-TEST-END exec 101\r
KYA-TEST-BEGIN files\r
test files::read ... Segmentation fault\r
KYA-TEST-END files 139\r
KYA-TEST-BEGIN sockets\r
running 1 test\r
";
        let tally = guest_results(console);
        assert_eq!((tally.passed, tally.failed), (3, 3));
        assert_eq!(
            tally.problems,
            [
                "files exited with status 139 without reporting a failed test",
                "sockets never finished"
            ]
        );
        assert_eq!(
            tally.durations,
            [
                ("egress::tcp".to_owned(), Duration::from_millis(1500)),
                ("egress::udp".to_owned(), Duration::from_millis(250)),
            ]
        );
        assert_eq!(
            tally.slowest(),
            ["egress::tcp (1.5 s)", "egress::udp (0.2 s)"]
        );
    }
}
