//! The few apt operations setup needs. `apt-get update` runs at most once per xtask run, and
//! only when something is missing, so an already set-up machine never touches the network.

use std::{path::Path, process::Command};

use anyhow::{Result, bail};

use crate::cmd;

#[derive(Default)]
pub struct Apt {
    updated: bool,
}

impl Apt {
    /// Refreshes the package lists, once.
    pub fn update(&mut self) -> Result<()> {
        if !self.updated {
            require_root("apt-get update")?;
            cmd::run(Command::new("apt-get").arg("update"))?;
            self.updated = true;
        }
        Ok(())
    }

    /// Installs `package` unless it is installed; returns whether it had to.
    pub fn ensure_installed(&mut self, package: &str) -> Result<bool> {
        if is_installed(package)? {
            return Ok(false);
        }
        require_root(&format!("apt-get install {package}"))?;
        self.update()?;
        // Recommends would pull in a desktop's worth of QEMU extras that a headless VM never uses.
        cmd::run(
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", package])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
        Ok(true)
    }

    /// Names of the packages matching the extended regular expression `pattern`.
    pub fn search_names(&mut self, pattern: &str) -> Result<Vec<String>> {
        let search = || -> Result<Vec<String>> {
            let out =
                cmd::output(Command::new("apt-cache").args(["search", "--names-only", pattern]))?;
            Ok(out
                .lines()
                .filter_map(|line| line.split(" - ").next())
                .map(str::to_owned)
                .collect())
        };
        let found = search()?;
        if !found.is_empty() || self.updated {
            return Ok(found);
        }
        // Fresh machines and containers often ship without package lists.
        self.update()?;
        search()
    }

    /// Downloads the `.deb` of `package` into `dir` and returns its path.
    pub fn download(package: &str, dir: &Path) -> Result<std::path::PathBuf> {
        // apt drops to its `_apt` user to download, which cannot enter root's home: it warns and
        // downloads as root anyway. Say so up front instead.
        cmd::run(
            Command::new("apt-get")
                .args(["-o", "APT::Sandbox::User=root", "download", package])
                .current_dir(dir),
        )?;
        let prefix = format!("{package}_");
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name.ends_with(".deb") {
                return Ok(dir.join(&*name));
            }
        }
        bail!(
            "`apt-get download {package}` left no {prefix}*.deb in {}",
            dir.display()
        )
    }
}

fn is_installed(package: &str) -> Result<bool> {
    // dpkg-query fails for packages it has never heard of; that is "not installed" too.
    let out = Command::new("dpkg-query")
        .args(["--show", "--showformat=${Status}", package])
        .output()?;
    Ok(out.status.success()
        && String::from_utf8_lossy(&out.stdout).trim() == "install ok installed")
}

fn require_root(what: &str) -> Result<()> {
    if !cmd::is_root() {
        bail!("`{what}` needs root: run it yourself with sudo, or run this command as root");
    }
    Ok(())
}
