//! Shell completions and man pages for `cargo xtask install` and `cargo xtask deb`. The
//! binaries render them from their own command-line definitions (`kya generate-docs DIR`,
//! hidden from their help); this puts each file where its reader looks, below a `share`
//! directory, with man pages compressed as Debian policy asks (`gzip -9n`).

use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
};

use anyhow::{Context as _, Result, bail};

use crate::cmd;

/// The binaries' hidden subcommand that writes the files into a directory.
const GENERATE: &str = "generate-docs";
/// bash-completion loads `NAME` from here when NAME is first completed.
pub const BASH_DIR: &str = "bash-completion/completions";
/// In Debian's zsh `fpath`, for packages.
pub const ZSH_VENDOR_DIR: &str = "zsh/vendor-completions";
/// In zsh's default `fpath` below /usr/local, for local installs.
pub const ZSH_SITE_DIR: &str = "zsh/site-functions";
/// fish loads `NAME.fish` from here, for packages and local installs alike.
pub const FISH_DIR: &str = "fish/vendor_completions.d";

/// One file to install, as a path below a `share` directory.
pub struct DocFile {
    pub path: PathBuf,
    pub contents: Vec<u8>,
}

/// The completions and man pages of each `(binary, name)`, with zsh's in `zsh_dir`, sorted by
/// path. Fails unless every binary wrote its bash, zsh and fish completions and its main man
/// page, and nothing else.
pub fn generate(binaries: &[(&Path, &str)], zsh_dir: &str) -> Result<Vec<DocFile>> {
    // Unique per call: the tests install several trees at once.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let mut files = Vec::new();
    for &(binary, name) in binaries {
        let dir =
            std::env::temp_dir().join(format!("xtask-docs-{name}-{}-{call}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        let result = generate_one(binary, name, zsh_dir, &dir);
        let _ = fs::remove_dir_all(&dir);
        files.extend(result?);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn generate_one(binary: &Path, name: &str, zsh_dir: &str, dir: &Path) -> Result<Vec<DocFile>> {
    cmd::output(Command::new(binary).arg(GENERATE).arg(dir))?;
    let mut written: Vec<String> = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let file = entry?.file_name();
        let Some(file) = file.to_str() else {
            bail!(
                "`{} {GENERATE}` wrote {}, a name that is not UTF-8",
                binary.display(),
                Path::new(&file).display()
            );
        };
        written.push(file.to_owned());
    }
    written.sort();
    let mut files = Vec::new();
    let mut main_page = false;
    for file in &written {
        let contents = fs::read(dir.join(file))
            .with_context(|| format!("reading {}", dir.join(file).display()))?;
        let path = if *file == format!("{name}.bash") {
            Path::new(BASH_DIR).join(name)
        } else if *file == format!("_{name}") {
            Path::new(zsh_dir).join(file)
        } else if *file == format!("{name}.fish") {
            Path::new(FISH_DIR).join(file)
        } else if let Some(section) = man_section(name, file) {
            main_page |= file.strip_suffix(&format!(".{section}")) == Some(name);
            files.push(DocFile {
                path: Path::new("man")
                    .join(format!("man{section}"))
                    .join(format!("{file}.gz")),
                contents: gzip(&contents)?,
            });
            continue;
        } else {
            bail!(
                "`{} {GENERATE}` wrote {file}, which is neither a completion script nor a man \
                 page of {name}",
                binary.display()
            );
        };
        files.push(DocFile { path, contents });
    }
    let missing: Vec<String> = [
        format!("{name}.bash"),
        format!("_{name}"),
        format!("{name}.fish"),
    ]
    .into_iter()
    .filter(|file| !written.contains(file))
    .chain((!main_page).then(|| format!("{name}.N (its man page)")))
    .collect();
    if !missing.is_empty() {
        bail!(
            "`{} {GENERATE}` did not write {}",
            binary.display(),
            missing.join(", ")
        );
    }
    Ok(files)
}

/// The section of `file` if it is a man page of `name` or of one of its subcommands:
/// `kya.1`, `kya-audit-verify.1`, `kya-agent.8`.
fn man_section(name: &str, file: &str) -> Option<char> {
    let (page, section) = file.rsplit_once('.')?;
    let mut chars = section.chars();
    let section = chars.next().filter(|c| ('1'..='9').contains(c))?;
    let own = page == name
        || page
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('-'));
    (chars.next().is_none() && own).then_some(section)
}

/// `contents` compressed by `gzip -9n`: best compression, and no name or time stamp in the
/// header, so the same page gives the same bytes.
fn gzip(contents: &[u8]) -> Result<Vec<u8>> {
    let mut command = Command::new("gzip");
    command
        .arg("-9n")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("could not start `{}`", cmd::describe(&command)))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // Written from another thread: gzip may fill its output pipe before it has read all input.
    let output = std::thread::scope(|scope| {
        let writer = scope.spawn(move || stdin.write_all(contents));
        let output = child.wait_with_output();
        let written = writer.join().expect("the gzip writer panicked");
        written.and(output)
    })
    .with_context(|| format!("running `{}`", cmd::describe(&command)))?;
    if !output.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            cmd::describe(&command),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output.stdout)
}

#[cfg(test)]
pub mod tests {

    use super::*;
    use crate::install::tests::{temp_dir, write_script};

    /// `gzip -dc` of `bytes`.
    pub fn gunzip(bytes: &[u8]) -> String {
        let mut command = Command::new("gzip");
        command
            .arg("-dc")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = command.spawn().expect("gzip runs");
        child.stdin.take().unwrap().write_all(bytes).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "gzip -dc failed");
        String::from_utf8(output.stdout).unwrap()
    }

    /// A stand-in binary whose `generate-docs DIR` writes `files` (each holding its own name).
    fn generator(dir: &Path, name: &str, files: &[&str]) -> PathBuf {
        let path = dir.join(format!("stand-in-{name}"));
        let script = format!(
            "#!/bin/sh\n[ \"$1\" = generate-docs ] || exit 9\nmkdir -p \"$2\"\n\
             for file in {}; do echo \"$file\" > \"$2/$file\"; done\n",
            files.join(" ")
        );
        write_script(&path, &script);
        path
    }

    #[test]
    fn files_go_where_their_readers_look_and_pages_are_compressed() {
        let dir = temp_dir("docs-places");
        let kya = generator(
            &dir,
            "kya",
            &[
                "kya.bash",
                "_kya",
                "kya.fish",
                "kya.1",
                "kya-audit-verify.1",
            ],
        );
        let files = generate(&[(&kya, "kya")], ZSH_SITE_DIR).unwrap();
        let paths: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
        assert_eq!(
            paths,
            [
                "bash-completion/completions/kya",
                "fish/vendor_completions.d/kya.fish",
                "man/man1/kya-audit-verify.1.gz",
                "man/man1/kya.1.gz",
                "zsh/site-functions/_kya",
            ]
        );
        assert_eq!(files[0].contents, b"kya.bash\n");
        assert_eq!(gunzip(&files[3].contents), "kya.1\n");
        assert_eq!(
            files[3].contents,
            gzip(b"kya.1\n").unwrap(),
            "the same page compresses to the same bytes"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_or_unexpected_file_is_refused() {
        let dir = temp_dir("docs-refused");
        let no_fish = generator(&dir, "no-fish", &["kya.bash", "_kya", "kya.1"]);
        let error = generate(&[(&no_fish, "kya")], ZSH_VENDOR_DIR)
            .err()
            .unwrap();
        assert!(
            format!("{error:#}").contains("did not write kya.fish"),
            "{error:#}"
        );

        let no_page = generator(
            &dir,
            "no-page",
            &["kya.bash", "_kya", "kya.fish", "kya-ps.1"],
        );
        let error = generate(&[(&no_page, "kya")], ZSH_VENDOR_DIR)
            .err()
            .unwrap();
        assert!(
            format!("{error:#}").contains("kya.N (its man page)"),
            "{error:#}"
        );

        let stray = generator(
            &dir,
            "stray",
            &["kya.bash", "_kya", "kya.fish", "kya.1", "other.1"],
        );
        let error = generate(&[(&stray, "kya")], ZSH_VENDOR_DIR).err().unwrap();
        assert!(format!("{error:#}").contains("wrote other.1"), "{error:#}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn man_pages_are_the_names_pages_in_sections_one_to_nine() {
        assert_eq!(man_section("kya", "kya.1"), Some('1'));
        assert_eq!(man_section("kya", "kya-audit-verify.1"), Some('1'));
        assert_eq!(man_section("kya-agent", "kya-agent-probe.8"), Some('8'));
        for (name, file) in [
            ("kya", "kyax.1"),
            ("kya", "kya.10"),
            ("kya", "kya.0"),
            ("kya", "kya.bash"),
            ("kya", "kya-agent"),
        ] {
            assert_eq!(man_section(name, file), None, "{file}");
        }
    }
}
