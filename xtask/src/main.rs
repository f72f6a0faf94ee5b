//! kya's developer commands (`cargo xtask ...`). One module per subcommand; the machine
//! setup, the cargo builds and the test VM are shared by all of them.

mod accounts;
mod apt;
mod bench;
mod build;
mod cmd;
mod deb;
mod docs;
mod helpers;
mod initramfs;
mod install;
mod kernels;
mod modules;
mod progress;
mod run;
mod setup;
mod test;
mod vm;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "kya's developer commands")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what the other commands need: the nightly toolchain with rust-src, bpf-linker,
    /// QEMU, cpio, busybox, systemd and the Debian kernels kya is tested on. Safe to run again.
    Setup,
    /// Build kya, kya-agent, kya-probe and the integration test executables.
    Build,
    /// Boot a test kernel in QEMU and run one command in it; exits with the command's status.
    Vm(vm::Args),
    /// Run the unit tests on this host and the integration tests in a VM on every test kernel.
    Test(test::Args),
    /// Measure what kya costs, in the VM on each test kernel, against the kernel without it.
    Bench(bench::Args),
    /// Run kya-agent on this host, or a demo of it in a VM when this kernel cannot load
    /// BPF LSM programs.
    Run(run::Args),
    /// Build the release binaries and install kya-agent as a systemd service on this host, or
    /// stage the files below --destdir.
    Install(install::Args),
    /// Build the release binaries and package them as target/deb/kya_<version>_amd64.deb.
    Deb,
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Setup => setup::run().map(|_| ExitCode::SUCCESS),
        Command::Build => build::run().map(|()| ExitCode::SUCCESS),
        Command::Vm(args) => vm::run(&args),
        Command::Test(args) => test::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Install(args) => install::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Deb => deb::run().map(|()| ExitCode::SUCCESS),
    };
    // Errors print as their chain of causes only: returning them from main would add a
    // backtrace of xtask itself whenever RUST_BACKTRACE is set for the code under test.
    result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
}
