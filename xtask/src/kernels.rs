//! The Debian kernels kya is tested on. Each series is tested on its newest signed cloud
//! kernel in the apt lists: the cloud flavour boots fast under QEMU and has BPF LSM built in.
//! Kernels live under the cache directory, one extracted package per directory, with a
//! `<label>/vmlinuz` symlink recording which one a series uses.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{apt::Apt, cmd, progress};

/// A kernel series: packages are named `<prefix><number><suffix>`, newest = highest number.
pub struct Series {
    pub label: &'static str,
    prefix: &'static str,
    suffix: &'static str,
}

/// The kernels tests run on, oldest first: Debian 12's own kernel and its backported 6.12,
/// whose struct layouts differ (Rust eBPF has no CO-RE: see the README's "How tagging works in the kernel").
pub const SERIES: [Series; 2] = [
    Series {
        label: "6.1",
        prefix: "linux-image-6.1.0-",
        suffix: "-cloud-amd64",
    },
    Series {
        label: "6.12",
        prefix: "linux-image-6.12.",
        suffix: "+deb12-cloud-amd64",
    },
];

#[derive(Clone, Debug)]
pub struct Kernel {
    /// "6.1", "6.12", or the path given to `--kernel`.
    pub label: String,
    /// `uname -r` inside the VM, as far as the file name tells.
    pub release: String,
    pub vmlinuz: PathBuf,
}

impl Kernel {
    /// A kernel given by path, e.g. one built by hand.
    pub fn custom(vmlinuz: &Path) -> Self {
        let name = vmlinuz.file_name().unwrap_or_default().to_string_lossy();
        Self {
            label: vmlinuz.display().to_string(),
            release: name.strip_prefix("vmlinuz-").unwrap_or(&name).to_owned(),
            vmlinuz: vmlinuz.to_path_buf(),
        }
    }
}

impl Series {
    /// The package number, if `name` is a signed image of this series (not -unsigned or -dbg).
    fn number(&self, name: &str) -> Option<u32> {
        let digits = name.strip_prefix(self.prefix)?.strip_suffix(self.suffix)?;
        digits.parse().ok()
    }

    fn newest_package(&self, apt: &mut Apt) -> Result<String> {
        let pattern = format!(
            "^{}[0-9]+{}$",
            self.prefix.replace('.', "\\."),
            self.suffix.replace('.', "\\.").replace('+', "\\+")
        );
        apt.search_names(&pattern)?
            .into_iter()
            .filter_map(|name| Some((self.number(&name)?, name)))
            .max()
            .map(|(_, name)| name)
            .with_context(|| format!("apt knows no {}<N>{} package", self.prefix, self.suffix))
    }
}

/// Makes sure the newest kernel of every series is downloaded and extracted.
pub fn ensure(apt: &mut Apt, dir: &Path) -> Result<Vec<Kernel>> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    SERIES
        .iter()
        .map(|series| ensure_series(series, apt, dir))
        .collect()
}

fn ensure_series(series: &Series, apt: &mut Apt, dir: &Path) -> Result<Kernel> {
    let package = series.newest_package(apt)?;
    let release = package
        .strip_prefix("linux-image-")
        .unwrap_or(&package)
        .to_owned();
    let extracted = dir.join(&package);
    let vmlinuz = extracted.join("boot").join(format!("vmlinuz-{release}"));
    let what = format!("kernel {} ({package})", series.label);

    if vmlinuz.is_file() {
        progress::present(&what);
    } else {
        // Extract next to the final directory and rename it into place, so an interrupted
        // download never looks like a kernel that is present.
        let partial = dir.join(format!("{package}.partial"));
        if partial.exists() {
            fs::remove_dir_all(&partial)?;
        }
        fs::create_dir_all(&partial)?;
        let deb = Apt::download(&package, &partial)?;
        cmd::run(Command::new("dpkg").arg("-x").arg(&deb).arg(&partial))?;
        fs::remove_file(&deb)?;
        if !partial
            .join("boot")
            .join(format!("vmlinuz-{release}"))
            .is_file()
        {
            bail!("{package} has no boot/vmlinuz-{release}");
        }
        if extracted.exists() {
            fs::remove_dir_all(&extracted)?;
        }
        fs::rename(&partial, &extracted)?;
        progress::installed(&what);
    }

    let link_dir = dir.join(series.label);
    fs::create_dir_all(&link_dir)?;
    let link = link_dir.join("vmlinuz");
    if fs::read_link(&link).ok().as_deref() != Some(vmlinuz.as_path()) {
        // Write a new link and rename it over the old one: the record is never missing.
        let tmp = link_dir.join("vmlinuz.new");
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&vmlinuz, &tmp)?;
        fs::rename(&tmp, &link)?;
    }
    // Kernels this series used before: only the newest is tested.
    for entry in fs::read_dir(dir)?.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name != package && series.number(&name).is_some() {
            fs::remove_dir_all(entry.path())
                .with_context(|| format!("removing {}", entry.path().display()))?;
        }
    }
    Ok(Kernel {
        label: series.label.to_owned(),
        release,
        vmlinuz: link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_only_signed_images_of_the_series() {
        let [old, new] = &SERIES;
        assert_eq!(old.number("linux-image-6.1.0-57-cloud-amd64"), Some(57));
        assert_eq!(
            old.number("linux-image-6.1.0-57-cloud-amd64-unsigned"),
            None
        );
        assert_eq!(old.number("linux-image-6.1.0-57-cloud-amd64-dbg"), None);
        assert_eq!(old.number("linux-image-6.12.117+deb12-cloud-amd64"), None);
        assert_eq!(
            new.number("linux-image-6.12.117+deb12-cloud-amd64"),
            Some(117)
        );
        assert_eq!(new.number("linux-image-6.12-cloud-amd64"), None);
        assert_eq!(new.number("linux-image-6.12.117+deb12-amd64"), None);
    }

    #[test]
    fn custom_kernel_release_comes_from_the_file_name() {
        let kernel = Kernel::custom(Path::new("/boot/vmlinuz-6.18.0-test"));
        assert_eq!(kernel.release, "6.18.0-test");
        assert_eq!(kernel.label, "/boot/vmlinuz-6.18.0-test");
    }
}
