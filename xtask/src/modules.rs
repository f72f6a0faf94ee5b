//! Kernel modules for the test VM. The cloud kernels build loop, btrfs, XFS, overlayfs and
//! binfmt_misc as modules, and the filesystem and kernel facility tests need them: each is taken
//! from its kernel's package with the modules it depends on, decompressed on the host (6.12
//! ships `.ko.xz`), and put in the initramfs at `/lib/modules/<release>/<name>.ko`.
//! `/lib/modules/<release>/load-order` lists them with every module after its dependencies, for
//! the tests to `insmod` when they need them (nothing is loaded at boot, so other tests pay
//! nothing). The kernel's configuration goes to `/boot/config-<release>`.

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{initramfs::Initramfs, kernels::Kernel};

/// The modules the filesystem tests load (and binfmt_misc, which the kernel facility tests
/// mount).
pub const FILESYSTEM_TESTS: [&str; 5] = ["loop", "btrfs", "xfs", "overlay", "binfmt_misc"];

/// Adds `names` and their dependencies from `kernel`'s modules to the initramfs. A kernel
/// given by path whose modules are not where its package would put them gets none (its
/// filesystem tests then fail, saying so).
pub fn add(initramfs: &mut Initramfs, kernel: &Kernel, names: &[&str]) -> Result<()> {
    // The kernel's build configuration, at `/boot/config-<release>` as distributions install
    // it: a test that finds a facility missing tells a kernel built without it from a broken
    // image.
    if let Some(config) = fs::canonicalize(&kernel.vmlinuz)
        .ok()
        .and_then(|vmlinuz| Some(vmlinuz.parent()?.join(format!("config-{}", kernel.release))))
        .filter(|config| config.is_file())
    {
        let contents =
            fs::read(&config).with_context(|| format!("reading {}", config.display()))?;
        initramfs.write_bytes(
            &format!("/boot/config-{}", kernel.release),
            &contents,
            0o644,
        )?;
    }
    let Some(dir) = module_dir(kernel) else {
        println!(
            "test: no modules for kernel {} next to {}: the filesystem tests will fail",
            kernel.label,
            kernel.vmlinuz.display()
        );
        return Ok(());
    };
    let files = index(&dir)?;
    let mut order = Vec::new();
    let mut contents = HashMap::new();
    for name in names {
        visit(name, &files, &mut contents, &mut order, 0)?;
    }
    let guest_dir = format!("/lib/modules/{}", kernel.release);
    for name in &order {
        initramfs.write_bytes(&format!("{guest_dir}/{name}.ko"), &contents[name], 0o644)?;
    }
    let mut list = order.join("\n");
    list.push('\n');
    initramfs.write(&format!("{guest_dir}/load-order"), &list, 0o644)
}

/// `lib/modules/<release>/kernel` of the package the kernel was extracted from (the vmlinuz is
/// its `boot/vmlinuz-<release>`).
fn module_dir(kernel: &Kernel) -> Option<PathBuf> {
    let vmlinuz = fs::canonicalize(&kernel.vmlinuz).ok()?;
    let root = vmlinuz.parent()?.parent()?;
    let dir = root
        .join("lib/modules")
        .join(&kernel.release)
        .join("kernel");
    dir.is_dir().then_some(dir)
}

/// Module name (dashes as underscores, as the kernel names them) → file, for every module below
/// `dir`.
fn index(dir: &Path) -> Result<HashMap<String, PathBuf>> {
    let mut files = HashMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Some(name) = path.file_name().and_then(|name| name.to_str())
                && let Some(stem) = name
                    .strip_suffix(".ko")
                    .or_else(|| name.strip_suffix(".ko.xz"))
            {
                files.insert(stem.replace('-', "_"), path);
            }
        }
    }
    Ok(files)
}

/// Adds `name` after its dependencies (depth-first), each once.
fn visit(
    name: &str,
    files: &HashMap<String, PathBuf>,
    contents: &mut HashMap<String, Vec<u8>>,
    order: &mut Vec<String>,
    depth: usize,
) -> Result<()> {
    if contents.contains_key(name) {
        return Ok(());
    }
    if depth > 16 {
        bail!("module dependencies nest deeper than 16 at {name}: a cycle?");
    }
    let path = files
        .get(name)
        .with_context(|| format!("no module {name} in the kernel package"))?;
    let bytes = read_module(path)?;
    for dependency in depends(&bytes) {
        visit(dependency, files, contents, order, depth + 1)?;
    }
    contents.insert(name.to_owned(), bytes);
    order.push(name.to_owned());
    Ok(())
}

fn read_module(path: &Path) -> Result<Vec<u8>> {
    if path.extension().is_some_and(|ext| ext == "xz") {
        let out = Command::new("xz")
            .arg("-dc")
            .arg(path)
            .output()
            .context("could not start `xz`")?;
        if !out.status.success() {
            bail!(
                "`xz -dc {}` failed: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out.stdout)
    } else {
        fs::read(path).with_context(|| format!("reading {}", path.display()))
    }
}

/// The modules a module's `.modinfo` says it depends on (`depends=a,b`).
fn depends(module: &[u8]) -> Vec<&str> {
    const KEY: &[u8] = b"\0depends=";
    let Some(start) = module
        .windows(KEY.len())
        .position(|window| window == KEY)
        .map(|at| at + KEY.len())
    else {
        return Vec::new();
    };
    let value = &module[start..];
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    std::str::from_utf8(&value[..end])
        .unwrap_or_default()
        .split(',')
        .filter(|name| !name.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_come_from_modinfo() {
        let module = b"\x7fELF...\0license=GPL\0depends=zstd_compress,raid6_pq,xor\0intree=Y\0";
        assert_eq!(depends(module), ["zstd_compress", "raid6_pq", "xor"]);
        assert!(depends(b"\0license=GPL\0depends=\0name=loop\0").is_empty());
        assert!(depends(b"no modinfo").is_empty());
    }
}
