//! `cargo xtask setup`: everything the other commands need from this machine. Each item is
//! checked before it is installed and reported as "already present: X" or "installed: X", so
//! every other command runs this first at almost no cost.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, anyhow, bail};

use crate::{
    apt::Apt,
    cmd, helpers, kernels,
    kernels::Kernel,
    progress::{installed, present},
};

/// Where setup keeps what it downloads or builds, relative to `$HOME`. Not under /tmp:
/// bpf-linker keeps an rpath into it, and the kernels are worth keeping across reboots.
const CACHE_DIR: &str = ".cache/kya";

/// Debian packages the test VM needs (the mkfs tools for the filesystem tests are copied into
/// it), systemd, whose systemd-analyze and systemctl the install and packaging tests run on
/// the unit, and the shells and man page checkers that kya-agent's tests load the generated
/// completions and man pages into. The deputy tests' helpers come on top:
/// `helpers::APT_PACKAGES`, and the ghost agent tests' shadow tools: `accounts::APT_PACKAGES`.
const APT_PACKAGES: [&str; 11] = [
    "qemu-system-x86",
    "cpio",
    "busybox-static",
    "btrfs-progs",
    "xfsprogs",
    "e2fsprogs",
    "systemd",
    "zsh",
    "fish",
    "mandoc",
    "groff-base",
];

/// What the other commands use from the machine.
pub struct Setup {
    /// A statically linked busybox: the whole userland of the test VM.
    pub busybox: PathBuf,
    /// The test kernels, in the order tests run on them.
    pub kernels: Vec<Kernel>,
}

impl Setup {
    /// The kernel for a `--kernel` argument: a label from [`kernels::SERIES`] or a vmlinuz path.
    pub fn kernel(&self, choice: &str) -> Result<Kernel> {
        if let Some(kernel) = self.kernels.iter().find(|k| k.label == choice) {
            return Ok(kernel.clone());
        }
        let path = Path::new(choice);
        if path.is_file() {
            return Ok(Kernel::custom(path));
        }
        let labels: Vec<_> = self.kernels.iter().map(|k| k.label.as_str()).collect();
        bail!(
            "--kernel {choice}: expected one of {} or the path of a vmlinuz file",
            labels.join(", ")
        )
    }
}

pub fn cache_dir() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").ok_or_else(|| anyhow!("HOME is not set"))?;
    Ok(Path::new(&home).join(CACHE_DIR))
}

pub fn run() -> Result<Setup> {
    let cache = cache_dir()?;
    fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let mut apt = Apt::default();

    toolchain_in(&cache)?;
    for package in APT_PACKAGES
        .into_iter()
        .chain(helpers::APT_PACKAGES)
        .chain(crate::accounts::APT_PACKAGES)
    {
        if apt.ensure_installed(package)? {
            installed(package);
        } else {
            present(package);
        }
    }
    let busybox = static_busybox()?;
    let kernels = kernels::ensure(&mut apt, &cache.join("kernels"))?;
    Ok(Setup { busybox, kernels })
}

/// Only what building kya needs (the kernel programs need the nightly toolchain and
/// bpf-linker), for commands that install kya rather than test it.
pub fn toolchain() -> Result<()> {
    let cache = cache_dir()?;
    fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    toolchain_in(&cache)
}

fn toolchain_in(cache: &Path) -> Result<()> {
    nightly_toolchain()?;
    bpf_linker(cache)
}

/// aya-build compiles the kernel programs with `rustup run nightly cargo build -Z build-std`,
/// which needs a toolchain named exactly `nightly` and its rust-src.
fn nightly_toolchain() -> Result<()> {
    let toolchains = cmd::output(Command::new("rustup").args(["toolchain", "list"]))
        .context("rustup is needed for the nightly toolchain: install it from https://rustup.rs")?;
    // "nightly-<host>" is the toolchain `rustup run nightly` picks; a dated
    // "nightly-2025-01-01-<host>" is a different one.
    let has_nightly = toolchains.lines().any(|line| {
        line.split_whitespace()
            .next()
            .and_then(|name| name.strip_prefix("nightly-"))
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
    });
    if has_nightly {
        present("nightly toolchain");
    } else {
        cmd::run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
        installed("nightly toolchain");
    }

    let components = cmd::output(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))?;
    if components.lines().any(|line| line.trim() == "rust-src") {
        present("rust-src (nightly)");
    } else {
        cmd::run(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))?;
        installed("rust-src (nightly)");
    }
    Ok(())
}

/// bpf-linker must link against the LLVM inside the nightly toolchain (rustc emits bitcode for
/// that LLVM), so it is built from source with `LLVM_PREFIX` pointing at the toolchain's libLLVM.
fn bpf_linker(cache: &Path) -> Result<()> {
    // A bpf-linker whose libLLVM went away with a nightly update fails to start: rebuild it then.
    if let Ok(path) = which::which("bpf-linker")
        && Command::new(&path)
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success())
    {
        present(&format!("bpf-linker ({})", path.display()));
        return Ok(());
    }

    let sysroot = cmd::output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))?;
    let toolchain_lib = Path::new(sysroot.trim()).join("lib");
    let (libllvm, major) = nightly_libllvm(&toolchain_lib)?;

    // The prefix must outlive the build: the linker finds libLLVM through an rpath into it.
    let prefix_lib = cache.join("llvm/lib");
    fs::create_dir_all(&prefix_lib)?;
    let soname = libllvm.file_name().expect("read_dir entries have names");
    for link in [prefix_lib.join("libLLVM.so"), prefix_lib.join(soname)] {
        replace_symlink(&libllvm, &link)?;
    }

    cmd::run(
        cmd::cargo()
            .args([
                "install",
                "--force",
                "bpf-linker",
                "--no-default-features",
                "--features",
            ])
            .arg(format!("llvm-{major}"))
            .env("LLVM_PREFIX", cache.join("llvm")),
    )?;
    let path = which::which("bpf-linker").context(
        "bpf-linker was installed but is not on PATH: add ~/.cargo/bin to PATH (aya-build runs it from there)",
    )?;
    installed(&format!("bpf-linker ({}, LLVM {major})", path.display()));
    Ok(())
}

/// The toolchain's `libLLVM.so.<major>.<minor>-rust-...` and its major version, which picks
/// bpf-linker's `llvm-<major>` feature: a newer nightly brings a newer LLVM.
fn nightly_libllvm(toolchain_lib: &Path) -> Result<(PathBuf, u32)> {
    for entry in fs::read_dir(toolchain_lib)
        .with_context(|| format!("reading {}", toolchain_lib.display()))?
    {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(version) = name.strip_prefix("libLLVM.so.")
            && let Some(Ok(major)) = version.split('.').next().map(str::parse::<u32>)
        {
            return Ok((path, major));
        }
    }
    bail!(
        "no libLLVM.so.<version>* in {}: is the nightly toolchain complete?",
        toolchain_lib.display()
    )
}

fn replace_symlink(target: &Path, link: &Path) -> Result<()> {
    if fs::symlink_metadata(link).is_ok() {
        fs::remove_file(link).with_context(|| format!("removing {}", link.display()))?;
    }
    std::os::unix::fs::symlink(target, link)
        .with_context(|| format!("linking {} to {}", link.display(), target.display()))
}

/// The busybox binary of the busybox-static package (the dynamic `busybox` package conflicts
/// with it, so this one is static and runs in the VM without libraries).
fn static_busybox() -> Result<PathBuf> {
    let files = cmd::output(Command::new("dpkg").args(["--listfiles", "busybox-static"]))?;
    let busybox = files
        .lines()
        .map(Path::new)
        .find(|path| path.file_name().is_some_and(|n| n == "busybox") && path.is_file())
        .ok_or_else(|| anyhow!("the busybox-static package has no busybox binary"))?;
    present(&format!("busybox ({})", busybox.display()));
    Ok(busybox.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_llvm_major_version_of_the_nightly_toolchain() {
        let dir = std::env::temp_dir().join(format!("xtask-llvm-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        for name in [
            "libLLVM-22-rust-1.97.0-nightly.so",
            "librustc_driver-1.so",
            "libLLVM.so.22.1-rust-1.97.0-nightly",
        ] {
            fs::write(dir.join(name), "").unwrap();
        }
        let (path, major) = nightly_libllvm(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(major, 22);
        assert_eq!(
            path.file_name().unwrap(),
            "libLLVM.so.22.1-rust-1.97.0-nightly"
        );
    }
}
