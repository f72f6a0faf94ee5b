//! Builds what goes into the test VM. Paths come from cargo's JSON messages, not from a guessed
//! `target/debug/...`, so `CARGO_TARGET_DIR` and profile changes need no special cases.

use std::{
    io::BufReader,
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, anyhow, bail};
use cargo_metadata::{Artifact, Message, TargetKind};

use crate::{cmd, setup};

/// The package with the daemon and the CLI.
const AGENT_PACKAGE: &str = "kya-agent";
/// The package with the integration tests and their helper binaries.
const TESTS_PACKAGE: &str = "kya-tests";

/// The user-space binaries the VM runs.
pub struct Binaries {
    pub kya: PathBuf,
    pub kya_agent: PathBuf,
    /// A helper the integration tests run as the "agent" process under test.
    pub kya_probe: PathBuf,
}

/// An integration test executable of the tests package.
pub struct TestExecutable {
    /// The cargo target name, e.g. `connect` for `tests/tests/connect.rs`.
    pub name: String,
    pub path: PathBuf,
}

/// `cargo xtask build`: builds everything and says where it is.
pub fn run() -> Result<()> {
    // The kernel programs need the nightly toolchain and bpf-linker.
    setup::run()?;
    let binaries = binaries()?;
    let tests = test_executables()?;
    for path in [&binaries.kya, &binaries.kya_agent, &binaries.kya_probe] {
        println!("{}", path.display());
    }
    for test in &tests {
        println!("{}", test.path.display());
    }
    Ok(())
}

/// The daemon and the CLI.
pub fn agent() -> Result<(PathBuf, PathBuf)> {
    let artifacts = cargo(&["build", "--package", AGENT_PACKAGE, "--bins"])?;
    Ok((binary(&artifacts, "kya")?, binary(&artifacts, "kya-agent")?))
}

/// The daemon and the CLI, optimized: what gets installed.
pub fn release_agent() -> Result<(PathBuf, PathBuf)> {
    let artifacts = cargo(&["build", "--release", "--package", AGENT_PACKAGE, "--bins"])?;
    Ok((binary(&artifacts, "kya")?, binary(&artifacts, "kya-agent")?))
}

pub fn binaries() -> Result<Binaries> {
    let (kya, kya_agent) = agent()?;
    let artifacts = cargo(&["build", "--package", TESTS_PACKAGE, "--bins"])?;
    Ok(Binaries {
        kya,
        kya_agent,
        kya_probe: binary(&artifacts, "kya-probe")?,
    })
}

/// The optimized binaries `cargo xtask bench` measures: the daemon, the CLI and `kya-bench`.
pub struct BenchBinaries {
    pub kya: PathBuf,
    pub kya_agent: PathBuf,
    pub kya_bench: PathBuf,
}

pub fn bench_binaries() -> Result<BenchBinaries> {
    let (kya, kya_agent) = release_agent()?;
    let tests = cargo(&["build", "--release", "--package", TESTS_PACKAGE, "--bins"])?;
    Ok(BenchBinaries {
        kya,
        kya_agent,
        kya_bench: binary(&tests, "kya-bench")?,
    })
}

/// Every test harness of the tests package (its integration tests, and its library's and
/// binaries' unit tests if it has any: all of them need the VM).
pub fn test_executables() -> Result<Vec<TestExecutable>> {
    let artifacts = cargo(&["test", "--package", TESTS_PACKAGE, "--no-run"])?;
    let mut tests: Vec<_> = artifacts
        .into_iter()
        .filter(|artifact| artifact.profile.test)
        .filter_map(|artifact| {
            Some(TestExecutable {
                name: artifact.target.name.clone(),
                path: artifact.executable?.into_std_path_buf(),
            })
        })
        .collect();
    tests.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(pair) = tests.windows(2).find(|pair| pair[0].name == pair[1].name) {
        bail!(
            "two test targets of {TESTS_PACKAGE} are both named `{}`; rename one",
            pair[0].name
        );
    }
    Ok(tests)
}

/// Runs a cargo command with JSON messages and returns the artifacts it produced (fresh ones
/// included). Compiler diagnostics still reach the terminal, rendered as usual.
fn cargo(args: &[&str]) -> Result<Vec<Artifact>> {
    let mut command: Command = cmd::cargo();
    command
        .args(args)
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("could not start `{}`", cmd::describe(&command)))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut artifacts = Vec::new();
    for message in Message::parse_stream(BufReader::new(stdout)) {
        match message.context("reading cargo's JSON messages")? {
            Message::CompilerArtifact(artifact) => artifacts.push(artifact),
            Message::TextLine(line) => println!("{line}"),
            _ => {}
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("`{}` failed ({status})", cmd::describe(&command));
    }
    Ok(artifacts)
}

fn binary(artifacts: &[Artifact], name: &str) -> Result<PathBuf> {
    artifacts
        .iter()
        .filter(|artifact| {
            artifact.target.name == name && artifact.target.kind.contains(&TargetKind::Bin)
        })
        .find_map(|artifact| artifact.executable.clone())
        .map(cargo_metadata::camino::Utf8PathBuf::into_std_path_buf)
        .ok_or_else(|| anyhow!("cargo built no `{name}` binary"))
}
