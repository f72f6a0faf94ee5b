//! `cargo xtask run`: kya-agent in the foreground on this host when its kernel can run BPF LSM
//! programs, otherwise a scripted demo of the same agent in the test VM.

use std::{
    os::unix::process::CommandExt as _,
    path::PathBuf,
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

/// The guest side of the demo.
const DEMO: &str = include_str!("demo.sh");

/// The kernel the demo boots: the newer of the test kernels.
const DEMO_KERNEL: &str = "6.12";

#[derive(clap::Args)]
pub struct Args {
    /// Agent configuration file; without it the agent uses its embedded default.
    #[arg(long)]
    config: Option<PathBuf>,
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
    initramfs.write("/kya/demo.sh", DEMO, 0o755)?;
    let mut command = vec!["sh".to_owned(), "/kya/demo.sh".to_owned()];
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
