//! `cargo xtask deb`: builds the release binaries and packages them, with the default config
//! and the systemd unit, as `target/deb/kya_<version>_amd64.deb`. The packaging itself takes
//! built binaries, so the tests package stand-ins.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{
    build, cmd,
    docs::{self, ZSH_VENDOR_DIR},
    install::{self, DEFAULT_CONFIG, EXECUTABLE, READABLE, UNIT, UNIT_NAME},
    setup,
};

/// The only architecture packaged: the one the binaries are built for here.
const ARCHITECTURE: &str = "amd64";
/// The workspace member whose version the package carries (every member shares it).
const VERSION_PACKAGE: &str = "kya-agent";
const README: &str = include_str!("../../README.md");

/// Enables kya-agent on first installation (upgrades keep the administrator's choice) and
/// starts or restarts it where systemd runs. A daemon that cannot start (no BPF LSM, a bad
/// config) leaves the package installed and says where to look. `DPKG_ROOT` is set, and
/// nonempty, only when dpkg installs into another root: then nothing is started.
const POSTINST: &str = r#"#!/bin/sh
set -e
if [ "$1" = configure ]; then
    if [ -z "$2" ] && command -v systemctl >/dev/null; then
        systemctl ${DPKG_ROOT:+--root="$DPKG_ROOT"} enable kya-agent.service
    fi
    if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        if [ -z "$2" ]; then action=start; else action=try-restart; fi
        systemctl "$action" kya-agent.service ||
            echo "kya: kya-agent did not start: see systemctl status kya-agent" >&2
    fi
fi
exit 0
"#;

/// Stops the daemon when the package is removed (not on upgrade: postinst restarts it then).
const PRERM: &str = r#"#!/bin/sh
set -e
if [ "$1" = remove ] && [ -z "${DPKG_ROOT:-}" ]; then
    if [ -d /run/systemd/system ]; then
        systemctl stop kya-agent.service || true
    fi
    # Stopping the daemon leaves enforcement pinned; removing the package ends it.
    /usr/bin/kya-agent unload || true
fi
exit 0
"#;

/// On purge: removes the config, the enablement and the state snapshot, and keeps the audit
/// trail, which the package never deletes.
const POSTRM: &str = r#"#!/bin/sh
set -e
case "$1" in
purge)
    rm -f "$DPKG_ROOT/etc/systemd/system/multi-user.target.wants/kya-agent.service"
    rm -rf "$DPKG_ROOT/etc/kya"
    # The audit trail (audit.jsonl) stays: the record of who approved what outlives kya.
    rm -f "$DPKG_ROOT/var/lib/kya/state.json" "$DPKG_ROOT/var/lib/kya/state.json.partial"
    rmdir "$DPKG_ROOT/var/lib/kya" 2>/dev/null || true
    ;;
esac
if [ "$1" = remove ] || [ "$1" = purge ]; then
    if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
        systemctl daemon-reload || true
    fi
fi
exit 0
"#;

pub fn run() -> Result<()> {
    if std::env::consts::ARCH != "x86_64" {
        bail!(
            "only {ARCHITECTURE} packages are built, and this is {}",
            std::env::consts::ARCH
        );
    }
    let version = package_version()?;
    setup::toolchain()?;
    let (kya, kya_agent) = build::release_agent()?;
    let out_dir = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?
        .target_directory
        .into_std_path_buf()
        .join("deb");
    let deb = build(&kya, &kya_agent, &version, &out_dir)?;
    println!("built: {}", deb.display());
    print!(
        "{}",
        cmd::output(Command::new("dpkg-deb").arg("--info").arg(&deb))?
    );
    print!(
        "{}",
        cmd::output(Command::new("dpkg-deb").arg("--contents").arg(&deb))?
    );
    println!();
    println!("install it with: dpkg -i {}", deb.display());
    Ok(())
}

/// The Cargo version of the package the binaries come from.
fn package_version() -> Result<String> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    Ok(metadata
        .packages
        .iter()
        .find(|package| package.name.as_str() == VERSION_PACKAGE)
        .with_context(|| format!("the workspace has no {VERSION_PACKAGE} package"))?
        .version
        .to_string())
}

/// Builds `out_dir/kya_<version>_amd64.deb` from the given binaries and returns its path.
/// `version` is the Cargo version, which the binaries must report (`kya --version`).
pub fn build(kya: &Path, kya_agent: &Path, version: &str, out_dir: &Path) -> Result<PathBuf> {
    let binaries = [(kya, "kya"), (kya_agent, "kya-agent")];
    check_versions(&binaries, version)?;
    let version = debian_version(version);
    let name = format!("kya_{version}_{ARCHITECTURE}");
    let tree = out_dir.join(&name);
    if tree.exists() {
        fs::remove_dir_all(&tree).with_context(|| format!("removing {}", tree.display()))?;
    }
    let file = |path: &str| tree.join(path);
    install::copy_file(kya, &file("usr/bin/kya"), EXECUTABLE)?;
    install::copy_file(kya_agent, &file("usr/bin/kya-agent"), EXECUTABLE)?;
    install::write_file(&file(install::CONFIG), DEFAULT_CONFIG.as_bytes(), READABLE)?;
    install::write_file(
        &file(&format!("lib/systemd/system/{UNIT_NAME}")),
        UNIT.as_bytes(),
        READABLE,
    )?;
    install::write_file(
        &file("usr/share/doc/kya/README.md"),
        README.as_bytes(),
        READABLE,
    )?;
    for doc in docs::generate(&binaries, ZSH_VENDOR_DIR)? {
        install::write_file(&file("usr/share").join(&doc.path), &doc.contents, READABLE)?;
    }

    let installed_kib = size_of_tree(&tree)?.div_ceil(1024);
    // The binaries link libc, libm and libgcc_s; libc6 provides the first two and depends on
    // libgcc-s1, which provides the third.
    let control = format!(
        "Package: kya\n\
         Version: {version}\n\
         Architecture: {ARCHITECTURE}\n\
         Maintainer: kya developers <kya@example.invalid>\n\
         Installed-Size: {installed_kib}\n\
         Depends: libc6\n\
         Section: admin\n\
         Priority: optional\n\
         Description: Know Your Agent: kernel enforcement for hosts that run AI agents\n \
         kya tags AI agent processes and all their descendants with BPF LSM programs,\n \
         so that their credential reads and outbound connections are refused unless a\n \
         named human approved them.\n \
         .\n \
         kya-agent is the daemon, run as the systemd service kya-agent.service; kya is\n \
         the command-line tool for status, events and approvals.\n"
    );
    install::write_file(&file("DEBIAN/control"), control.as_bytes(), READABLE)?;
    install::write_file(
        &file("DEBIAN/conffiles"),
        format!("/{}\n", install::CONFIG).as_bytes(),
        READABLE,
    )?;
    for (script, text) in [("postinst", POSTINST), ("prerm", PRERM), ("postrm", POSTRM)] {
        install::write_file(
            &file(&format!("DEBIAN/{script}")),
            text.as_bytes(),
            EXECUTABLE,
        )?;
    }

    let deb = out_dir.join(format!("{name}.deb"));
    cmd::output(
        Command::new("dpkg-deb")
            .args(["--build", "--root-owner-group"])
            .arg(&tree)
            .arg(&deb),
    )?;
    Ok(deb)
}

/// Fails unless each binary's `--version` says `NAME VERSION`: what users see must be the
/// package they installed.
fn check_versions(binaries: &[(&Path, &str)], version: &str) -> Result<()> {
    for &(binary, name) in binaries {
        let said = cmd::output(Command::new(binary).arg("--version"))?;
        let expected = format!("{name} {version}");
        if said.trim_end() != expected {
            bail!(
                "`{} --version` says {:?}, and the package is {expected}: rebuild it from this \
                 workspace",
                binary.display(),
                said.trim_end()
            );
        }
    }
    Ok(())
}

/// Cargo's pre-release `1.0.0-rc.1` sorts before `1.0.0`; in Debian that takes a tilde.
fn debian_version(cargo_version: &str) -> String {
    cargo_version.replacen('-', "~", 1)
}

/// Bytes in the files below `dir`, leaving out the control directory.
fn size_of_tree(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            if entry.file_name() != "DEBIAN" {
                total += size_of_tree(&entry.path())?;
            }
        } else {
            total += meta.len();
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeSet, ffi::OsStr};

    use super::*;
    use crate::install::tests::{
        STAND_IN_VERSION, dummy_binaries, require_systemd_analyze, temp_dir,
    };

    fn dpkg_deb(args: &[&OsStr]) -> String {
        cmd::output(Command::new("dpkg-deb").args(args)).unwrap_or_else(|error| {
            panic!("dpkg-deb should succeed (apt-get install dpkg): {error:#}")
        })
    }

    /// A package of stand-in binaries, in a fresh directory of its own.
    fn dummy_package(name: &str) -> (PathBuf, PathBuf) {
        let dir = temp_dir(name);
        let (kya, kya_agent) = dummy_binaries(&dir);
        let deb = build(&kya, &kya_agent, STAND_IN_VERSION, &dir.join("out")).unwrap();
        assert_eq!(deb.file_name().unwrap(), "kya_1.2.3_amd64.deb");
        (dir, deb)
    }

    #[test]
    fn the_package_holds_exactly_the_binaries_config_unit_readme_completions_and_man_pages() {
        let (dir, deb) = dummy_package("deb-contents");
        // Lines like `-rwxr-xr-x root/root 123 2025-01-01 00:00 ./usr/bin/kya`.
        let listing = dpkg_deb(&["--contents".as_ref(), deb.as_ref()]);
        let entries: BTreeSet<String> = listing
            .lines()
            .map(|line| {
                let fields: Vec<_> = line.split_whitespace().collect();
                assert_eq!(
                    fields.len(),
                    6,
                    "unexpected dpkg-deb --contents line: {line}"
                );
                format!("{} {} {}", fields[0], fields[1], fields[5])
            })
            .collect();
        let expected: BTreeSet<String> = [
            "drwxr-xr-x root/root ./",
            "drwxr-xr-x root/root ./etc/",
            "drwxr-xr-x root/root ./etc/kya/",
            "-rw-r--r-- root/root ./etc/kya/kya.toml",
            "drwxr-xr-x root/root ./lib/",
            "drwxr-xr-x root/root ./lib/systemd/",
            "drwxr-xr-x root/root ./lib/systemd/system/",
            "-rw-r--r-- root/root ./lib/systemd/system/kya-agent.service",
            "drwxr-xr-x root/root ./usr/",
            "drwxr-xr-x root/root ./usr/bin/",
            "-rwxr-xr-x root/root ./usr/bin/kya",
            "-rwxr-xr-x root/root ./usr/bin/kya-agent",
            "drwxr-xr-x root/root ./usr/share/",
            "drwxr-xr-x root/root ./usr/share/bash-completion/",
            "drwxr-xr-x root/root ./usr/share/bash-completion/completions/",
            "-rw-r--r-- root/root ./usr/share/bash-completion/completions/kya",
            "-rw-r--r-- root/root ./usr/share/bash-completion/completions/kya-agent",
            "drwxr-xr-x root/root ./usr/share/doc/",
            "drwxr-xr-x root/root ./usr/share/doc/kya/",
            "-rw-r--r-- root/root ./usr/share/doc/kya/README.md",
            "drwxr-xr-x root/root ./usr/share/fish/",
            "drwxr-xr-x root/root ./usr/share/fish/vendor_completions.d/",
            "-rw-r--r-- root/root ./usr/share/fish/vendor_completions.d/kya-agent.fish",
            "-rw-r--r-- root/root ./usr/share/fish/vendor_completions.d/kya.fish",
            "drwxr-xr-x root/root ./usr/share/man/",
            "drwxr-xr-x root/root ./usr/share/man/man1/",
            "-rw-r--r-- root/root ./usr/share/man/man1/kya-sub.1.gz",
            "-rw-r--r-- root/root ./usr/share/man/man1/kya.1.gz",
            "drwxr-xr-x root/root ./usr/share/man/man8/",
            "-rw-r--r-- root/root ./usr/share/man/man8/kya-agent-sub.8.gz",
            "-rw-r--r-- root/root ./usr/share/man/man8/kya-agent.8.gz",
            "drwxr-xr-x root/root ./usr/share/zsh/",
            "drwxr-xr-x root/root ./usr/share/zsh/vendor-completions/",
            "-rw-r--r-- root/root ./usr/share/zsh/vendor-completions/_kya",
            "-rw-r--r-- root/root ./usr/share/zsh/vendor-completions/_kya-agent",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        assert_eq!(entries, expected, "dpkg-deb --contents:\n{listing}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_control_data_names_the_package_its_conffile_and_executable_scripts() {
        let (dir, deb) = dummy_package("deb-info");
        let conffiles = dpkg_deb(&["--info".as_ref(), deb.as_ref(), "conffiles".as_ref()]);
        assert_eq!(conffiles, "/etc/kya/kya.toml\n");

        let fields = dpkg_deb(&[
            "--field".as_ref(),
            deb.as_ref(),
            "Package".as_ref(),
            "Version".as_ref(),
            "Architecture".as_ref(),
            "Maintainer".as_ref(),
            "Depends".as_ref(),
        ]);
        assert_eq!(
            fields,
            "Package: kya\nVersion: 1.2.3\nArchitecture: amd64\n\
             Maintainer: kya developers <kya@example.invalid>\nDepends: libc6\n"
        );

        // The summary marks executable control members with `*`, e.g.
        // ` 512 bytes,  17 lines   *  postinst   #!/bin/sh`.
        let info = dpkg_deb(&["--info".as_ref(), deb.as_ref()]);
        for member in ["conffiles", "control", "postinst", "postrm", "prerm"] {
            let line = info
                .lines()
                .find(|line| line.split_whitespace().any(|word| word == member))
                .unwrap_or_else(|| panic!("dpkg-deb --info lists no {member}:\n{info}"));
            let executable = line.contains(" * ");
            assert_eq!(
                executable,
                ["postinst", "postrm", "prerm"].contains(&member),
                "executable mark of {member}: {line}"
            );
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Runs a maintainer script of the package the way dpkg does for `dpkg --root=ROOT`.
    fn maintainer_script(control: &Path, root: &Path, script: &str, args: &[&str]) {
        let mut command = Command::new(control.join(script));
        command.args(args).env("DPKG_ROOT", root);
        cmd::output(&mut command).unwrap_or_else(|error| panic!("{script}: {error:#}"));
    }

    #[test]
    fn installed_into_a_root_it_is_enabled_verifies_and_a_purge_keeps_the_audit_trail() {
        let (dir, deb) = dummy_package("deb-root");
        let root = dir.join("root");
        let control = dir.join("control");
        dpkg_deb(&["--extract".as_ref(), deb.as_ref(), root.as_ref()]);
        dpkg_deb(&["--control".as_ref(), deb.as_ref(), control.as_ref()]);

        require_systemd_analyze();
        install::verify_unit(&root, &root.join("lib/systemd/system/kya-agent.service")).unwrap();

        assert!(
            which::which("systemctl").is_ok(),
            "systemctl is needed to check the package's postinst: install systemd"
        );
        let wants = root.join("etc/systemd/system/multi-user.target.wants/kya-agent.service");
        maintainer_script(&control, &root, "postinst", &["configure", ""]);
        assert!(
            wants.symlink_metadata().is_ok(),
            "postinst should enable kya-agent on first installation"
        );

        let state = root.join("var/lib/kya");
        install::create_dirs(&state).unwrap();
        for file in ["audit.jsonl", "state.json"] {
            fs::write(state.join(file), "{}\n").unwrap();
        }
        maintainer_script(&control, &root, "prerm", &["remove"]);
        maintainer_script(&control, &root, "postrm", &["remove"]);
        assert!(root.join("etc/kya").exists(), "remove keeps the config");
        maintainer_script(&control, &root, "postrm", &["purge"]);
        assert!(!root.join("etc/kya").exists(), "purge removes /etc/kya");
        assert!(
            !state.join("state.json").exists(),
            "purge removes the snapshot"
        );
        assert!(
            state.join("audit.jsonl").exists(),
            "purge must keep the audit trail"
        );
        assert!(
            wants.symlink_metadata().is_err(),
            "purge removes the enablement"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_man_pages_are_compressed_and_the_completions_are_as_generated() {
        let (dir, deb) = dummy_package("deb-docs");
        let root = dir.join("root");
        dpkg_deb(&["--extract".as_ref(), deb.as_ref(), root.as_ref()]);
        let page = fs::read(root.join("usr/share/man/man8/kya-agent.8.gz")).unwrap();
        assert_eq!(crate::docs::tests::gunzip(&page), "kya-agent.8\n");
        assert_eq!(
            fs::read_to_string(root.join("usr/share/zsh/vendor-completions/_kya")).unwrap(),
            "_kya\n"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_binaries_must_report_the_packages_version() {
        let dir = temp_dir("deb-version");
        let (kya, kya_agent) = dummy_binaries(&dir);
        let error = build(&kya, &kya_agent, "1.2.4", &dir.join("out"))
            .expect_err("binaries of 1.2.3 in a package of 1.2.4");
        assert!(
            format!("{error:#}").contains("says \"kya 1.2.3\", and the package is kya 1.2.4"),
            "{error:#}"
        );
        assert!(!dir.join("out").exists(), "nothing is packaged");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_version_packaged_is_the_workspace_version() {
        // What `run` packages and the binaries report (clap's `version` is
        // CARGO_PKG_VERSION, which every member inherits from the workspace).
        assert_eq!(package_version().unwrap(), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn a_cargo_pre_release_sorts_before_its_release_in_debian() {
        assert_eq!(debian_version("0.1.0"), "0.1.0");
        assert_eq!(debian_version("1.0.0-rc.1"), "1.0.0~rc.1");
    }
}
