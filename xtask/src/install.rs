//! `cargo xtask install`: builds the release binaries and installs kya-agent as a systemd
//! service, on this host or staged below `--destdir`. Installing is separate from building so
//! the tests can install stand-in binaries; `cargo xtask deb` shares the file helpers here.

use std::{
    fs,
    io::{self, Write as _},
    os::unix::fs::{DirBuilderExt as _, PermissionsExt as _},
    path::{Component, Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail, ensure};

use crate::{
    build, cmd,
    docs::{self, FISH_DIR, ZSH_SITE_DIR, ZSH_VENDOR_DIR},
    setup,
};

/// The systemd unit as packaged: ExecStart names the Debian package's `/usr/bin/kya-agent`.
pub const UNIT: &str = include_str!("../../deploy/systemd/kya-agent.service");
pub const UNIT_NAME: &str = "kya-agent.service";
/// The commented default config, the same file the daemon embeds.
pub const DEFAULT_CONFIG: &str = include_str!("../../kya-agent/src/config/default.toml");
/// The config file, relative to the root it is installed in.
pub const CONFIG: &str = "etc/kya/kya.toml";
/// Where an administrator's units live, relative to the root.
const UNIT_DIR: &str = "etc/systemd/system";
/// The packaged unit's command line up to its arguments; `install` points it into the prefix.
const PACKAGED_EXEC_START: &str = "ExecStart=/usr/bin/kya-agent ";
/// The unit's reload line, naming the package's `/usr/bin/kya`.
const PACKAGED_EXEC_RELOAD: &str = "ExecReload=/usr/bin/kya ";
/// Mode of the binaries and maintainer scripts.
pub const EXECUTABLE: u32 = 0o755;
/// Mode of the config, the unit and the documentation.
pub const READABLE: u32 = 0o644;

#[derive(clap::Args)]
pub struct Args {
    /// Installation prefix: the binaries go to PREFIX/bin.
    #[arg(long, value_name = "DIR", default_value = "/usr/local")]
    prefix: PathBuf,
    /// Stage everything below DIR instead of installing on this host (DIR/PREFIX/bin,
    /// DIR/etc/kya, DIR/etc/systemd/system).
    #[arg(long, value_name = "DIR")]
    destdir: Option<PathBuf>,
}

/// One file `install` wrote (or left alone), as a path below the destdir.
#[derive(Debug)]
pub struct Installed {
    pub path: PathBuf,
    pub mode: u32,
    /// Anything the administrator should know about this file.
    pub note: Option<String>,
}

pub fn run(args: &Args) -> Result<()> {
    let destdir = args
        .destdir
        .clone()
        .filter(|dir| !dir.as_os_str().is_empty());
    if destdir.is_none() && !cmd::is_root() {
        bail!(
            "installing on this host writes to {} and /etc, which needs root: run it as root, \
             or stage the files with --destdir DIR",
            args.prefix.display()
        );
    }
    check_prefix(&args.prefix)?;
    setup::toolchain()?;
    let (kya, kya_agent) = build::release_agent()?;
    let root = destdir.clone().unwrap_or_else(|| PathBuf::from("/"));
    let installed = install(&root, &args.prefix, &kya, &kya_agent)?;
    for file in &installed {
        println!("installed: {} ({:04o})", file.path.display(), file.mode);
        if let Some(note) = &file.note {
            println!("           {note}");
        }
    }
    let unit = root.join(UNIT_DIR).join(UNIT_NAME);
    if which::which("systemd-analyze").is_ok() {
        verify_unit(&root, &unit)?;
        println!("verified: {} (systemd-analyze verify)", unit.display());
    } else {
        println!("not verified: systemd-analyze is not installed");
    }
    println!();
    if let Some(destdir) = &destdir {
        println!(
            "staged below {}: copy that tree onto the host's /, then as root:",
            destdir.display()
        );
    } else {
        println!("next steps, as root:");
    }
    println!("  $EDITOR /{CONFIG}   # the agents to confine");
    println!(
        "  {} check-config /{CONFIG}",
        args.prefix.join("bin/kya-agent").display()
    );
    println!("  systemctl daemon-reload && systemctl enable --now kya-agent");
    Ok(())
}

/// Installs the binaries into `root/prefix/bin`, their shell completions and man pages below
/// `root/prefix/share`, the default config into `root/etc/kya` (keeping an existing one) and
/// the unit, started from `prefix/bin/kya-agent`, into `root/etc/systemd/system`.
pub fn install(root: &Path, prefix: &Path, kya: &Path, kya_agent: &Path) -> Result<Vec<Installed>> {
    check_prefix(prefix)?;
    let prefix_bin = prefix.join("bin");
    let bin = below(root, &prefix_bin);
    let mut installed = Vec::new();
    for (source, name) in [(kya, "kya"), (kya_agent, "kya-agent")] {
        let path = bin.join(name);
        copy_file(source, &path, EXECUTABLE)?;
        installed.push(Installed {
            path,
            mode: EXECUTABLE,
            note: None,
        });
    }
    installed.extend(install_docs(root, prefix, kya, kya_agent)?);
    installed.push(install_config(&root.join(CONFIG))?);
    let unit = root.join(UNIT_DIR).join(UNIT_NAME);
    write_file(
        &unit,
        unit_for(&prefix_bin.join("kya-agent"))?.as_bytes(),
        READABLE,
    )?;
    installed.push(Installed {
        path: unit,
        mode: READABLE,
        note: None,
    });
    Ok(installed)
}

/// The completions and man pages the binaries generate, below `root/prefix/share`: where
/// bash-completion, zsh, fish and man look below /usr and /usr/local. zsh and fish do not look
/// below other prefixes; the report says so.
fn install_docs(
    root: &Path,
    prefix: &Path,
    kya: &Path,
    kya_agent: &Path,
) -> Result<Vec<Installed>> {
    // Debian's zsh reads packages' completions from vendor-completions below /usr, and local
    // ones from site-functions below /usr/local.
    let zsh_dir = if prefix == Path::new("/usr") {
        ZSH_VENDOR_DIR
    } else {
        ZSH_SITE_DIR
    };
    let searched = prefix == Path::new("/usr") || prefix == Path::new("/usr/local");
    let share = prefix.join("share");
    let mut installed = Vec::new();
    for file in docs::generate(&[(kya, "kya"), (kya_agent, "kya-agent")], zsh_dir)? {
        let path = below(root, &share).join(&file.path);
        write_file(&path, &file.contents, READABLE)?;
        let dir = share.join(file.path.parent().unwrap_or(Path::new("")));
        let note = if searched {
            None
        } else if file.path.starts_with(zsh_dir) {
            Some(format!("zsh looks here once fpath names {}", dir.display()))
        } else if file.path.starts_with(FISH_DIR) {
            Some(format!(
                "fish looks here once fish_complete_path names {}",
                dir.display()
            ))
        } else {
            None
        };
        installed.push(Installed {
            path,
            mode: READABLE,
            note,
        });
    }
    Ok(installed)
}

/// The default config, unless the administrator has one: then it is kept and the default is
/// put beside it as `kya.toml.new`.
fn install_config(path: &Path) -> Result<Installed> {
    let existing = match fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(error)
            if error.kind() == io::ErrorKind::NotFound && path.symlink_metadata().is_err() =>
        {
            None
        }
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    match existing {
        None => {
            write_file(path, DEFAULT_CONFIG.as_bytes(), READABLE)?;
            Ok(Installed {
                path: path.to_owned(),
                mode: READABLE,
                note: None,
            })
        }
        Some(bytes) if bytes == DEFAULT_CONFIG.as_bytes() => Ok(Installed {
            path: path.to_owned(),
            mode: READABLE,
            note: Some("already the default config: left as it was".to_owned()),
        }),
        Some(_) => {
            let new = path.with_extension("toml.new");
            write_file(&new, DEFAULT_CONFIG.as_bytes(), READABLE)?;
            Ok(Installed {
                note: Some(format!(
                    "{} exists and was kept; this is the new default config, to compare with it",
                    path.display()
                )),
                path: new,
                mode: READABLE,
            })
        }
    }
}

/// The packaged unit with ExecStart pointing at `kya_agent`, and ExecReload at the `kya` beside
/// it.
pub fn unit_for(kya_agent: &Path) -> Result<String> {
    for line in [PACKAGED_EXEC_START, PACKAGED_EXEC_RELOAD] {
        ensure!(
            UNIT.matches(line).count() == 1,
            "deploy/systemd/{UNIT_NAME} must have exactly one line starting with `{line}`"
        );
    }
    Ok(UNIT
        .replace(
            PACKAGED_EXEC_START,
            &format!("ExecStart={} ", kya_agent.display()),
        )
        .replace(
            PACKAGED_EXEC_RELOAD,
            &format!("ExecReload={} ", kya_agent.with_file_name("kya").display()),
        ))
}

/// The prefix goes into ExecStart unquoted, so it must be a plain absolute path: no spaces,
/// quotes, `%` (a systemd specifier) or `$`, and no `..`.
fn check_prefix(prefix: &Path) -> Result<()> {
    let plain = prefix.to_str().is_some_and(|text| {
        text.bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"/._+-".contains(&byte))
    });
    if !prefix.is_absolute()
        || !plain
        || prefix.components().any(|part| part == Component::ParentDir)
    {
        bail!(
            "--prefix {}: expected an absolute path of letters, digits and / . _ + - without \
             `..`, such as /usr/local",
            prefix.display()
        );
    }
    Ok(())
}

/// `path` (absolute) inside `root`.
pub fn below(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Runs `systemd-analyze verify` on `unit` as it is installed below `root`: its syntax, and that
/// ExecStart names an executable below `root`. `--recursive-errors=no` leaves out the units it
/// depends on (sysinit.target and the rest), which a staging directory does not have.
pub fn verify_unit(root: &Path, unit: &Path) -> Result<()> {
    let mut verify = Command::new("systemd-analyze");
    verify
        .arg("verify")
        .arg("--recursive-errors=no")
        .arg(format!("--root={}", root.display()))
        .arg(unit);
    let out = verify
        .output()
        .with_context(|| format!("could not start `{}`", cmd::describe(&verify)))?;
    // verify reports problems on stderr, some of them (unknown keys, bad values) without
    // failing: any output is a problem.
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !stderr.trim().is_empty() {
        bail!(
            "`{}` ({}): {}",
            cmd::describe(&verify),
            out.status,
            stderr.trim()
        );
    }
    Ok(())
}

/// Creates `dir` and any missing parents with mode 0755 whatever the umask, leaving existing
/// directories alone.
pub fn create_dirs(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent)?;
    }
    match fs::DirBuilder::new().mode(0o755).create(dir) {
        Err(error) if error.kind() != io::ErrorKind::AlreadyExists => {
            return Err(error).with_context(|| format!("creating {}", dir.display()));
        }
        _ => {}
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("setting the mode of {}", dir.display()))
}

/// Writes `path` with `mode` (whatever the umask): aside first, then renamed over the old file,
/// so a reader never sees half a file.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    replace(path, mode, |aside| {
        fs::File::create(aside)?.write_all(contents)
    })
}

/// Copies `source` to `path` with `mode`. Renaming the copy into place also works while the
/// old binary runs (writing into it would fail with ETXTBSY).
pub fn copy_file(source: &Path, path: &Path, mode: u32) -> Result<()> {
    replace(path, mode, |aside| fs::copy(source, aside).map(drop))
        .with_context(|| format!("copying {}", source.display()))
}

fn replace(path: &Path, mode: u32, write: impl FnOnce(&Path) -> io::Result<()>) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    create_dirs(dir)?;
    let aside = dir.join(format!(".{}.xtask-new", name.to_string_lossy()));
    let result = write(&aside)
        .and_then(|()| fs::set_permissions(&aside, fs::Permissions::from_mode(mode)))
        .and_then(|()| fs::rename(&aside, path));
    if result.is_err() {
        let _ = fs::remove_file(&aside);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
pub mod tests {
    use std::{collections::BTreeMap, os::unix::fs::MetadataExt as _};

    use super::*;

    /// A fresh empty directory for one test.
    pub fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Writes an executable script to `path` through a child process (`sh -c 'cat > PATH'`).
    /// Written by the test process itself, the file's write descriptor could be inherited by a
    /// child another test thread forks at that moment, and exec of the script then fails with
    /// ETXTBSY until that child execs; the test process never holds one this way.
    pub fn write_script(path: &Path, script: &str) {
        let mut writer = std::process::Command::new("sh")
            .args(["-c", "cat > \"$1\" && chmod 700 \"$1\"", "sh"])
            .arg(path)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("sh runs");
        std::io::Write::write_all(&mut writer.stdin.take().unwrap(), script.as_bytes()).unwrap();
        assert!(
            writer.wait().unwrap().success(),
            "writing {}",
            path.display()
        );
    }

    /// The version the stand-in binaries report.
    pub const STAND_IN_VERSION: &str = "1.2.3";

    /// Stand-ins for the built `kya` and `kya-agent`: tiny executables, no build needed. They
    /// answer `--version` and write placeholder completions and man pages (one subcommand's
    /// each) for `generate-docs DIR`; the real ones are checked in kya-agent's tests.
    pub fn dummy_binaries(dir: &Path) -> (PathBuf, PathBuf) {
        let make = |name: &str, section: &str| {
            let path = dir.join(format!("built-{name}"));
            let files =
                format!("{name}.bash _{name} {name}.fish {name}.{section} {name}-sub.{section}");
            write_script(
                &path,
                &format!(
                    "#!/bin/sh\n\
                     case \"$1\" in\n\
                     --version) echo \"{name} {STAND_IN_VERSION}\" ;;\n\
                     generate-docs)\n\
                     \x20   mkdir -p \"$2\" || exit 1\n\
                     \x20   for file in {files}; do echo \"$file\" > \"$2/$file\" || exit 1; done ;;\n\
                     *) echo {name} ;;\n\
                     esac\n"
                ),
            );
            path
        };
        (make("kya", "1"), make("kya-agent", "8"))
    }

    /// Every file and symlink below `root`, relative to it, with its permission bits.
    pub fn files_below(root: &Path) -> BTreeMap<String, u32> {
        fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, u32>) {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let meta = path.symlink_metadata().unwrap();
                if meta.is_dir() {
                    walk(root, &path, files);
                } else {
                    let relative = path.strip_prefix(root).unwrap().display().to_string();
                    files.insert(relative, meta.mode() & 0o7777);
                }
            }
        }
        let mut files = BTreeMap::new();
        walk(root, root, &mut files);
        files
    }

    /// Fails, never skips, when systemd-analyze is missing: the unit must be checked.
    pub fn require_systemd_analyze() {
        assert!(
            which::which("systemd-analyze").is_ok(),
            "systemd-analyze is needed to check the unit: install systemd (apt-get install \
             systemd)"
        );
    }

    #[test]
    fn installs_binaries_config_and_a_unit_that_starts_the_installed_daemon() {
        let dir = temp_dir("install");
        let (kya, kya_agent) = dummy_binaries(&dir);
        let root = dir.join("destdir");
        let installed = install(&root, Path::new("/opt/kya"), &kya, &kya_agent).unwrap();

        let mut expected = BTreeMap::from([
            ("etc/kya/kya.toml".to_owned(), 0o644),
            ("etc/systemd/system/kya-agent.service".to_owned(), 0o644),
            ("opt/kya/bin/kya".to_owned(), 0o755),
            ("opt/kya/bin/kya-agent".to_owned(), 0o755),
        ]);
        expected.extend(docs_below("opt/kya/share", "site-functions"));
        assert_eq!(files_below(&root), expected, "installed files and modes");
        assert_eq!(installed.len(), expected.len(), "one report line per file");
        for dir in [
            "opt",
            "opt/kya/bin",
            "opt/kya/share/man/man8",
            "opt/kya/share/bash-completion/completions",
            "etc/kya",
            "etc/systemd/system",
        ] {
            let mode = fs::metadata(root.join(dir)).unwrap().mode() & 0o7777;
            assert_eq!(mode, 0o755, "mode of {dir}");
        }
        assert_eq!(
            fs::read(root.join("opt/kya/bin/kya-agent")).unwrap(),
            fs::read(&kya_agent).unwrap()
        );
        assert_eq!(
            fs::read_to_string(root.join(CONFIG)).unwrap(),
            DEFAULT_CONFIG
        );

        let unit_path = root.join("etc/systemd/system/kya-agent.service");
        let unit = fs::read_to_string(&unit_path).unwrap();
        let exec_start: Vec<_> = unit
            .lines()
            .filter(|l| l.starts_with("ExecStart="))
            .collect();
        assert_eq!(
            exec_start,
            ["ExecStart=/opt/kya/bin/kya-agent --config /etc/kya/kya.toml"],
            "ExecStart should start the daemon installed in the prefix"
        );
        assert!(
            unit.contains("\nExecReload=/opt/kya/bin/kya reload\n"),
            "ExecReload should use the kya installed in the prefix"
        );

        require_systemd_analyze();
        verify_unit(&root, &unit_path).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    /// The stand-ins' completions and man pages as installed below `share`, zsh's in
    /// `zsh/ZSH_DIR`.
    fn docs_below(share: &str, zsh_dir: &str) -> Vec<(String, u32)> {
        [
            "bash-completion/completions/kya".to_owned(),
            "bash-completion/completions/kya-agent".to_owned(),
            format!("zsh/{zsh_dir}/_kya"),
            format!("zsh/{zsh_dir}/_kya-agent"),
            "fish/vendor_completions.d/kya.fish".to_owned(),
            "fish/vendor_completions.d/kya-agent.fish".to_owned(),
            "man/man1/kya.1.gz".to_owned(),
            "man/man1/kya-sub.1.gz".to_owned(),
            "man/man8/kya-agent.8.gz".to_owned(),
            "man/man8/kya-agent-sub.8.gz".to_owned(),
        ]
        .into_iter()
        .map(|file| (format!("{share}/{file}"), 0o644))
        .collect()
    }

    #[test]
    fn completions_and_man_pages_go_where_shells_and_man_look() {
        let dir = temp_dir("install-docs");
        let (kya, kya_agent) = dummy_binaries(&dir);
        for (prefix, zsh_dir, noted) in [
            ("/usr", "vendor-completions", false),
            ("/usr/local", "site-functions", false),
            ("/opt/kya", "site-functions", true),
        ] {
            let root = dir.join(prefix.trim_start_matches('/').replace('/', "-"));
            let installed = install(&root, Path::new(prefix), &kya, &kya_agent).unwrap();
            let share = format!("{}/share", prefix.trim_start_matches('/'));
            for (file, mode) in docs_below(&share, zsh_dir) {
                let path = root.join(&file);
                let report = installed
                    .iter()
                    .find(|line| line.path == path)
                    .unwrap_or_else(|| panic!("--prefix {prefix}: {file} is not reported"));
                assert_eq!(report.mode, mode);
                let bytes = fs::read(&path).unwrap();
                let name = path.file_name().unwrap().to_str().unwrap();
                // The stand-ins write each file's generated name into it.
                let text = if let Some(page) = name.strip_suffix(".gz") {
                    assert_eq!(&bytes[..2], b"\x1f\x8b", "{file} is gzip");
                    assert_eq!(crate::docs::tests::gunzip(&bytes), format!("{page}\n"));
                    continue;
                } else {
                    String::from_utf8(bytes).unwrap()
                };
                let generated = if file.contains("bash-completion") {
                    format!("{name}.bash\n")
                } else {
                    format!("{name}\n")
                };
                assert_eq!(text, generated, "{file}");
                let shell_outside_search_path = file.contains("/zsh/") || file.contains("/fish/");
                assert_eq!(
                    report.note.is_some(),
                    noted && shell_outside_search_path,
                    "--prefix {prefix}: note on {file}: {:?}",
                    report.note
                );
            }
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn verify_catches_a_unit_whose_daemon_is_not_installed() {
        let dir = temp_dir("install-unverified");
        let (kya, kya_agent) = dummy_binaries(&dir);
        let root = dir.join("destdir");
        install(&root, Path::new("/usr/local"), &kya, &kya_agent).unwrap();
        fs::remove_file(root.join("usr/local/bin/kya-agent")).unwrap();
        require_systemd_analyze();
        let error = verify_unit(&root, &root.join("etc/systemd/system/kya-agent.service"))
            .expect_err("verify should fail when ExecStart names no executable");
        assert!(
            format!("{error:#}").contains("/usr/local/bin/kya-agent"),
            "the error should name the missing binary: {error:#}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_existing_config_is_kept_and_the_default_goes_beside_it() {
        let dir = temp_dir("install-config");
        let (kya, kya_agent) = dummy_binaries(&dir);
        let root = dir.join("destdir");
        let config = root.join(CONFIG);
        write_file(&config, b"# mine\n", 0o600).unwrap();

        let installed = install(&root, Path::new("/usr/local"), &kya, &kya_agent).unwrap();
        assert_eq!(fs::read_to_string(&config).unwrap(), "# mine\n");
        assert_eq!(fs::metadata(&config).unwrap().mode() & 0o7777, 0o600);
        let new = root.join("etc/kya/kya.toml.new");
        assert_eq!(fs::read_to_string(&new).unwrap(), DEFAULT_CONFIG);
        let report = installed.iter().find(|file| file.path == new).unwrap();
        assert!(report.note.as_deref().unwrap().contains("was kept"));

        // A config that is still the default is left alone, with no .new beside it.
        fs::remove_file(&new).unwrap();
        write_file(&config, DEFAULT_CONFIG.as_bytes(), 0o644).unwrap();
        install(&root, Path::new("/usr/local"), &kya, &kya_agent).unwrap();
        assert!(
            !new.exists(),
            "no kya.toml.new when kya.toml is the default"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_prefix_must_be_a_plain_absolute_path() {
        for good in ["/usr/local", "/usr", "/opt/kya-1.0_x+y"] {
            check_prefix(Path::new(good)).unwrap();
        }
        for bad in [
            "usr/local",
            "/opt/my kya",
            "/opt/%n",
            "/opt/$HOME",
            "/opt/../usr",
            "",
        ] {
            assert!(
                check_prefix(Path::new(bad)).is_err(),
                "--prefix {bad:?} should be refused"
            );
        }
    }

    #[test]
    fn the_packaged_unit_starts_the_packaged_daemon() {
        assert_eq!(
            UNIT.lines()
                .filter(|line| line.starts_with("ExecStart="))
                .collect::<Vec<_>>(),
            ["ExecStart=/usr/bin/kya-agent --config /etc/kya/kya.toml"]
        );
        assert!(
            unit_for(Path::new("/usr/local/bin/kya-agent"))
                .unwrap()
                .contains("\nExecStart=/usr/local/bin/kya-agent --config /etc/kya/kya.toml\n")
        );
    }
}
