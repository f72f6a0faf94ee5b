//! The test VM's root filesystem: busybox, kya's binaries with the glibc libraries they load,
//! the users the tests switch to, an `/init` that mounts what kya needs, and the command to run.
//! An initramfs needs no disk image, no 9p and no virtiofs (the cloud kernels lack 9p).

use std::{
    collections::BTreeSet,
    fs,
    os::unix::fs::{PermissionsExt as _, symlink},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};

use crate::cmd;

/// PID 1: mounts, loopback, users' homes, then `/kya/command.sh`, then the exit marker.
const INIT: &str = include_str!("init.sh");

/// Where the command to run is written; `/init` runs it.
const COMMAND: &str = "/kya/command.sh";

/// Users the tests switch to. `coder` is the stand-in for an AI coding agent.
const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
alice:x:1000:1000:alice:/home/alice:/bin/sh
coder:x:1001:1001:coder:/home/coder:/bin/sh
bob:x:1002:1002:bob:/home/bob:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
";
/// Their shadow entries, with real password hashes (each user's password is their name), so
/// that `usermod -L` and `passwd -l` really lock and `chage -E` really expires. Day 20000 is
/// 2024-10-04, the last password change.
const SHADOW: &str = "\
root:*:20000:0:99999:7:::
alice:$6$kyaalice$C4iAi063z6ltSFgID6rYFL2G7d9OWkTthbisWBhl/8OFfSgjJp2XtfuS7CBE0q9qAph53DJMOMfQCb6P9Ab4H.:20000:0:99999:7:::
coder:$6$kyacoder$y62xG9QztiG4YjcNcVdP9oDptF3zc0pGWVlbataR06KqIvCXkGSlHcrH9iY34/zYYU85dTrN5kcZyFM02b60l.:20000:0:99999:7:::
bob:$6$kyabob$EbKrjOK/fEvUVOQIwl2/VC/zAtODNSnr2KmHVYi5ggvTYLLfjAnqSYQifSGcf0yh9DKVqEkcNUxFrcy7I.AE5/:20000:0:99999:7:::
nobody:*:20000:0:99999:7:::
";
const GROUP: &str = "\
root:x:0:
alice:x:1000:
coder:x:1001:
bob:x:1002:
nogroup:x:65534:
";
const HOSTS: &str = "\
127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
";
/// glibc would look these up through NSS; say "files" so nothing else is tried.
const NSSWITCH: &str = "\
passwd: files
group: files
shadow: files
hosts: files
";

/// A root filesystem being assembled in a directory on the host.
pub struct Initramfs {
    root: PathBuf,
    /// Libraries already copied, so each is copied once.
    libraries: BTreeSet<PathBuf>,
}

impl Initramfs {
    /// Starts an empty tree at `root` (removing what a previous run left there) with busybox,
    /// `/etc` and `/init`.
    pub fn new(root: &Path, busybox: &Path) -> Result<Self> {
        if root.exists() {
            fs::remove_dir_all(root).with_context(|| format!("removing {}", root.display()))?;
        }
        let mut tree = Self {
            root: root.to_path_buf(),
            libraries: BTreeSet::new(),
        };
        for dir in [
            "dev",
            "proc",
            "sys",
            "tmp",
            "run",
            "var/lib",
            "etc",
            "root",
            "home/alice",
            "home/coder",
            "home/bob",
            "usr/local/bin",
            "kya",
        ] {
            fs::create_dir_all(root.join(dir))?;
        }

        tree.copy_file(busybox, "/bin/busybox")?;
        // `--list-full` gives each applet's usual directory (sbin/poweroff, usr/bin/env, ...),
        // so scripts with `#!/usr/bin/env` work too.
        let applets = cmd::output(Command::new(busybox).arg("--list-full"))?;
        for applet in applets.lines().map(str::trim).filter(|a| !a.is_empty()) {
            let link = root.join(applet);
            if link.exists() || applet == "linuxrc" {
                continue;
            }
            fs::create_dir_all(link.parent().expect("applets live in a directory"))?;
            symlink("/bin/busybox", &link)
                .with_context(|| format!("linking {}", link.display()))?;
        }

        tree.write("/etc/passwd", PASSWD, 0o644)?;
        tree.write("/etc/shadow", SHADOW, 0o600)?;
        tree.write("/etc/group", GROUP, 0o644)?;
        tree.write("/etc/hosts", HOSTS, 0o644)?;
        tree.write("/etc/nsswitch.conf", NSSWITCH, 0o644)?;
        tree.write("/init", INIT, 0o755)?;
        Ok(tree)
    }

    /// Adds a dynamically linked executable at `guest` with the shared libraries `ldd` says it
    /// loads, at the same paths as on the host (so the dynamic loader finds them unconfigured).
    pub fn add_executable(&mut self, host: &Path, guest: &str) -> Result<()> {
        // Debug info is most of a debug build's size (kya-agent: 76 MB, 15 MB without) and the
        // guest unpacks everything into RAM. Symbols stay, so backtraces still name functions;
        // panic messages carry their locations without debug info.
        let dest = self.fresh_dest(guest)?;
        cmd::run(
            Command::new("objcopy")
                .arg("--strip-debug")
                .arg(host)
                .arg(&dest),
        )?;

        for library in shared_libraries(host)? {
            if self.libraries.insert(library.clone()) {
                let guest = library
                    .to_str()
                    .context("library path is not UTF-8")?
                    .to_owned();
                self.copy_file(&library, &guest)?;
            }
        }
        Ok(())
    }

    /// Adds one of kya's binaries to /usr/local/bin, which is on the guest's PATH and where the
    /// integration tests look for them.
    pub fn add_tool(&mut self, host: &Path) -> Result<()> {
        let name = host.file_name().context("a binary path names no file")?;
        let guest = Path::new("/usr/local/bin").join(name);
        self.add_executable(host, guest.to_str().context("binary name is not UTF-8")?)
    }

    /// Copies a host file, or a directory recursively, to `guest`.
    pub fn add_path(&mut self, host: &Path, guest: &str) -> Result<()> {
        if host.is_dir() {
            for entry in
                fs::read_dir(host).with_context(|| format!("reading {}", host.display()))?
            {
                let entry = entry?;
                let name = entry.file_name();
                let name = name.to_str().context("file name is not UTF-8")?;
                self.add_path(
                    &entry.path(),
                    &format!("{}/{name}", guest.trim_end_matches('/')),
                )?;
            }
            Ok(())
        } else {
            self.copy_file(host, guest)
        }
    }

    /// Writes a file with the given contents and mode.
    pub fn write(&mut self, guest: &str, contents: &str, mode: u32) -> Result<()> {
        self.write_bytes(guest, contents.as_bytes(), mode)
    }

    /// Writes a file with the given bytes and mode.
    pub fn write_bytes(&mut self, guest: &str, contents: &[u8], mode: u32) -> Result<()> {
        let dest = self.guest_path(guest)?;
        fs::create_dir_all(dest.parent().expect("guest paths are absolute"))?;
        fs::write(&dest, contents).with_context(|| format!("writing {}", dest.display()))?;
        fs::set_permissions(&dest, fs::Permissions::from_mode(mode))?;
        Ok(())
    }

    /// Sets the command `/init` runs, as a shell script with every argument single-quoted,
    /// so no argument is split, globbed or expanded on the way.
    pub fn set_command(&mut self, argv: &[String]) -> Result<()> {
        let line: Vec<String> = argv.iter().map(|arg| shell_quote(arg)).collect();
        self.write(COMMAND, &format!("{}\n", line.join(" ")), 0o755)
    }

    /// Packs the tree into a newc cpio archive at `out`. Uncompressed: gzip -1 made the 32 MB
    /// test initramfs 12 MB but booted no faster under TCG (about 5 s either way).
    pub fn pack(&self, out: &Path) -> Result<()> {
        let archive =
            fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
        let mut find = Command::new("find")
            .args([".", "-print0"])
            .current_dir(&self.root)
            .stdout(Stdio::piped())
            .spawn()
            .context("could not start `find`")?;
        // `-R 0:0`: everything belongs to root in the guest, whoever built it on the host.
        cmd::run(
            Command::new("cpio")
                .args([
                    "--null",
                    "--create",
                    "--format=newc",
                    "--owner=0:0",
                    "--quiet",
                ])
                .current_dir(&self.root)
                .stdin(find.stdout.take().expect("stdout is piped"))
                .stdout(archive),
        )?;
        if !find.wait()?.success() {
            bail!("`find` failed in {}", self.root.display());
        }
        Ok(())
    }

    fn copy_file(&mut self, host: &Path, guest: &str) -> Result<()> {
        let dest = self.fresh_dest(guest)?;
        fs::copy(host, &dest)
            .with_context(|| format!("copying {} to {}", host.display(), dest.display()))?;
        Ok(())
    }

    /// Where a file for `guest` goes, its directory created. A busybox applet's link already
    /// there is removed first: written through, it would overwrite the host's busybox.
    fn fresh_dest(&self, guest: &str) -> Result<PathBuf> {
        let dest = self.guest_path(guest)?;
        fs::create_dir_all(dest.parent().expect("guest paths are absolute"))?;
        if dest.is_symlink() {
            fs::remove_file(&dest).with_context(|| format!("removing {}", dest.display()))?;
        }
        Ok(dest)
    }

    fn guest_path(&self, guest: &str) -> Result<PathBuf> {
        let Some(relative) = guest.strip_prefix('/') else {
            bail!("guest path {guest} is not absolute");
        };
        if Path::new(relative)
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            bail!("guest path {guest} must not contain `.` or `..`");
        }
        Ok(self.root.join(relative))
    }
}

/// The libraries `ldd` lists for `binary`, the dynamic loader included.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .context("could not start `ldd`")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // A static executable needs nothing.
        if stdout.contains("not a dynamic executable")
            || String::from_utf8_lossy(&out.stderr).contains("not a dynamic executable")
        {
            return Ok(Vec::new());
        }
        bail!(
            "`ldd {}` failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse_ldd(&stdout)
}

/// Parses lines like `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` and
/// `/lib64/ld-linux-x86-64.so.2 (0x...)`; the vDSO has no file and is skipped.
fn parse_ldd(output: &str) -> Result<Vec<PathBuf>> {
    let mut libraries = Vec::new();
    for line in output.lines() {
        let line = line.trim();
        let path = match line.split_once(" => ") {
            Some((name, rest)) => {
                if rest.starts_with("not found") {
                    bail!("ldd: {name} not found");
                }
                rest.split_whitespace().next()
            }
            None => line.split_whitespace().next(),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            libraries.push(PathBuf::from(path));
        }
    }
    Ok(libraries)
}

/// `arg` in single quotes, with embedded single quotes written as `'\''`.
fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_libraries_and_loader() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                   \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f1)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n";
        assert_eq!(
            parse_ldd(out).unwrap(),
            [
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn ldd_missing_library_is_an_error() {
        assert!(parse_ldd("\tlibfoo.so.1 => not found\n").is_err());
    }

    #[test]
    fn quoting_keeps_each_argument_whole() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's $HOME"), r"'it'\''s $HOME'");
        assert_eq!(shell_quote(""), "''");
    }
}
