//! `cargo xtask run`: the demo (`demo.sh`: an agent refused, a human approving, the kernel
//! enforcing the approval) and then kya-agent in the foreground on this host when its kernel can
//! run BPF LSM programs; otherwise the same demo in the test VM.

use std::{
    fs,
    os::unix::{fs::symlink, process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};

use crate::{
    build, cmd,
    initramfs::Initramfs,
    setup,
    vm::{self, Machine, WorkDir},
};

/// The demo script, run by `cargo xtask run` and checked step by step by the `demo` kernel test.
pub const DEMO: &str = include_str!("demo.sh");

/// Where the test VM and `cargo xtask run` put the demo script.
pub const DEMO_GUEST_PATH: &str = "/kya/demo.sh";

/// Tools the demo runs besides kya's own; on a host they are taken from the static busybox, as
/// in the VM, so the demo's output is the same on both.
const DEMO_TOOLS: [&str; 2] = ["httpd", "wget"];

/// The kernel the demo boots: the newer of the test kernels.
const DEMO_KERNEL: &str = "6.12";

#[derive(clap::Args)]
pub struct Args {
    /// Agent configuration file; without it the agent uses its embedded default. (In the VM
    /// the demo ends by checking it with `kya-agent check-config`.)
    #[arg(long)]
    config: Option<PathBuf>,
    /// On a host that runs BPF LSM programs, start the agent without showing the demo first.
    #[arg(long)]
    no_demo: bool,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    if let Some(config) = &args.config
        && !config.is_file()
    {
        bail!("--config {}: no such file", config.display());
    }
    let setup = setup::run()?;
    let (kya, kya_agent) = build::agent()?;

    // The agent's own check: it knows what it loads better than xtask could guess.
    let probe = Command::new(&kya_agent)
        .arg("probe")
        .output()
        .with_context(|| format!("could not run `{} probe`", kya_agent.display()))?;
    if probe.status.success() {
        if !cmd::is_root() {
            bail!("kya-agent loads BPF programs and needs root: run `sudo -E cargo xtask run`");
        }
        if !args.no_demo {
            demo_on_host(&kya, &kya_agent, &setup.busybox)?;
        }
        let mut agent = Command::new(&kya_agent);
        if let Some(config) = &args.config {
            agent.arg("--config").arg(config);
        }
        println!(
            "run: this kernel runs BPF LSM programs; starting `{}`",
            cmd::describe(&agent)
        );
        // exec only returns on failure.
        let error = agent.exec();
        return Err(error).with_context(|| format!("could not run `{}`", cmd::describe(&agent)));
    }

    let why = [probe.stdout, probe.stderr]
        .iter()
        .map(|out| String::from_utf8_lossy(out).trim().to_owned())
        .filter(|out| !out.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if why.is_empty() {
        println!(
            "run: `kya-agent probe` failed ({}) without saying why",
            probe.status
        );
    } else {
        println!("run: {why}");
    }
    println!(
        "run: running the same agent in a VM (kernel {DEMO_KERNEL}) with a scripted demo instead"
    );

    let kernel = setup.kernel(DEMO_KERNEL)?;
    let dir = WorkDir::new("run")?;
    let mut initramfs = Initramfs::new(&dir.path.join("root"), &setup.busybox)?;
    initramfs.add_tool(&kya)?;
    initramfs.add_tool(&kya_agent)?;
    initramfs.write(DEMO_GUEST_PATH, DEMO, 0o755)?;
    let mut command = vec!["sh".to_owned(), DEMO_GUEST_PATH.to_owned()];
    if let Some(config) = &args.config {
        let name = config
            .file_name()
            .context("--config names no file")?
            .to_string_lossy();
        let guest = format!("/kya/include/{name}");
        initramfs.add_path(config, &guest)?;
        command.push(guest);
    }
    initramfs.set_command(&command)?;
    let initrd = dir.path.join("initrd.cpio");
    initramfs.pack(&initrd)?;

    let machine = Machine {
        memory_mib: 2048,
        timeout: Duration::from_mins(10),
        console_prefix: None,
        instruction_clock: false,
    };
    let status = vm::boot(&kernel, &initrd, &machine, &dir.path.join("console.log")).status?;
    Ok(ExitCode::from(u8::try_from(status).unwrap_or(u8::MAX)))
}

/// Runs the demo on this host with the built `kya` and `kya-agent` first on `PATH`; it starts
/// and unloads its own agent, and keeps its files in a work directory.
fn demo_on_host(kya: &Path, kya_agent: &Path, busybox: &Path) -> Result<()> {
    let dir = WorkDir::new("demo")?;
    let bin = dir.path.join("bin");
    fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    for (name, target) in [("kya", kya), ("kya-agent", kya_agent)]
        .into_iter()
        .chain(DEMO_TOOLS.map(|tool| (tool, busybox)))
    {
        let link = bin.join(name);
        symlink(target, &link).with_context(|| format!("linking {}", link.display()))?;
    }
    let script = dir.path.join("demo.sh");
    fs::write(&script, DEMO).with_context(|| format!("writing {}", script.display()))?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin];
    paths.extend(std::env::split_paths(&path));
    let mut demo = Command::new("sh");
    demo.arg(&script)
        .env("PATH", std::env::join_paths(paths)?)
        .env("KYA_DEMO_DIR", dir.path.join("scene"));
    println!("run: the demo first (`--no-demo` skips it)");
    let status = demo
        .status()
        .with_context(|| format!("could not run `{}`", cmd::describe(&demo)))?;
    if !status.success() {
        bail!(
            "the demo failed ({status}); its files are in {}",
            dir.path.display()
        );
    }
    Ok(())
}
