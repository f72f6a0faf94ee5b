//! The built `kya` and `kya-agent` as a user and their shell meet them: `--version` says the
//! package's version, and the completions and man pages they generate (what `cargo xtask
//! install` and the .deb install) load in bash, zsh and fish, lint clean in mandoc and groff,
//! and name every subcommand the binaries' own `--help` lists.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// The binaries and their man sections.
const BINARIES: [(&str, &str); 2] = [
    (env!("CARGO_BIN_EXE_kya"), "1"),
    (env!("CARGO_BIN_EXE_kya-agent"), "8"),
];

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("could not start {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(command: &mut Command) -> String {
    String::from_utf8(run(command).stdout).expect("UTF-8 output")
}

/// Fails, never skips, when a checker is missing: `cargo xtask setup` installs it.
fn require(tool: &str, package: &str) -> PathBuf {
    which(tool).unwrap_or_else(|| {
        panic!(
            "{tool} is needed to check the generated completions and man pages: \
             apt-get install {package} (cargo xtask setup installs it)"
        )
    })
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(tool))
        .find(|path| path.is_file())
}

fn name_of(binary: &str) -> &str {
    Path::new(binary).file_name().unwrap().to_str().unwrap()
}

/// Every subcommand path below `binary`, as its `--help` lists them (`["audit", "verify"]`),
/// without clap's `help`.
fn subcommands(binary: &str, path: &[String]) -> Vec<Vec<String>> {
    let help = stdout(Command::new(binary).args(path).arg("--help"));
    let mut found = Vec::new();
    let listed = help
        .lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty());
    for line in listed {
        let name = line.split_whitespace().next().unwrap().to_owned();
        if name == "help" {
            continue;
        }
        let mut sub = path.to_vec();
        sub.push(name);
        found.extend(subcommands(binary, &sub));
        found.push(sub);
    }
    found
}

/// The files `binary generate-docs` writes, in a fresh directory of the test's own.
fn generated(binary: &str, test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "kya-cli-docs-{test}-{}-{}",
        name_of(binary),
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    let listed = stdout(Command::new(binary).arg("generate-docs").arg(&dir));
    let mut on_disk: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path().display().to_string())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = listed.lines().map(str::to_owned).collect();
    listed.sort();
    assert_eq!(
        listed, on_disk,
        "generate-docs should print each file it writes"
    );
    dir
}

#[test]
fn version_is_the_package_version_in_cargo_metadata() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let metadata: serde_json::Value = serde_json::from_str(&stdout(
        Command::new(cargo)
            .args([
                "metadata",
                "--no-deps",
                "--format-version",
                "1",
                "--manifest-path",
            ])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")),
    ))
    .unwrap();
    // The package the .deb takes its version from (cargo xtask deb).
    let version = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|package| package["name"] == "kya-agent")
        .expect("cargo metadata lists kya-agent")["version"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    for (binary, _) in BINARIES {
        assert_eq!(
            stdout(Command::new(binary).arg("--version")),
            format!("{} {version}\n", name_of(binary)),
            "{binary} --version"
        );
    }
}

#[test]
fn generate_docs_is_in_no_help_completion_or_page() {
    for (binary, _) in BINARIES {
        let dir = generated(binary, "hidden");
        assert!(!stdout(Command::new(binary).arg("--help")).contains("generate"));
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            assert!(
                !fs::read_to_string(&path).unwrap().contains("generate"),
                "{} mentions the hidden generator",
                path.display()
            );
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}

/// What bash offers after `words` (the last one being completed), through the completion
/// function the script registers (`complete -F FUNCTION ... NAME`), called as bash calls it.
fn bash_completes(script: &Path, name: &str, words: &[&str]) -> BTreeSet<String> {
    let text = fs::read_to_string(script).unwrap();
    let function = text
        .lines()
        .find_map(|line| {
            let rest = line.trim().strip_prefix("complete -F ")?;
            (line.split_whitespace().last() == Some(name))
                .then(|| rest.split_whitespace().next().unwrap().to_owned())
        })
        .unwrap_or_else(|| panic!("{} registers no function for {name}", script.display()));
    let words: Vec<String> = words.iter().map(|word| format!("'{word}'")).collect();
    let program = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE=\"${{COMP_WORDS[*]}}\"\n\
         COMP_POINT=${{#COMP_LINE}}\n{function} {name} \"${{COMP_WORDS[COMP_CWORD]}}\" \
         \"${{COMP_WORDS[COMP_CWORD-1]}}\"\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        words.join(" "),
        words.len() - 1
    );
    stdout(Command::new("bash").arg("-c").arg(program))
        .lines()
        .map(|line| line.trim().to_owned())
        .collect()
}

/// What fish offers for `line`, through `complete -C` with the script loaded.
fn fish_completes(script: &Path, line: &str) -> BTreeSet<String> {
    let program = format!("source '{}'; complete -C '{line}'", script.display());
    stdout(
        Command::new("fish")
            .arg("--no-config")
            .arg("-c")
            .arg(program),
    )
    .lines()
    .map(|line| line.split('\t').next().unwrap().to_owned())
    .collect()
}

#[test]
fn bash_zsh_and_fish_complete_every_subcommand() {
    require("bash", "bash");
    require("zsh", "zsh");
    require("fish", "fish");
    for (binary, _) in BINARIES {
        let name = name_of(binary);
        let dir = generated(binary, "completions");
        let bash = dir.join(format!("{name}.bash"));
        let zsh = dir.join(format!("_{name}"));
        let fish = dir.join(format!("{name}.fish"));
        run(Command::new("bash").arg("-n").arg(&bash));
        run(Command::new("zsh").arg("-n").arg(&zsh));
        run(Command::new("fish").arg("--no-config").arg("-n").arg(&fish));
        let zsh_script = fs::read_to_string(&zsh).unwrap();
        assert!(
            zsh_script.starts_with(&format!("#compdef {name}\n")),
            "{}",
            zsh.display()
        );

        let subcommands = subcommands(binary, &[]);
        assert!(!subcommands.is_empty(), "{name} --help lists no subcommand");
        for path in &subcommands {
            let (last, parents) = path.split_last().unwrap();
            let mut words = vec![name];
            words.extend(parents.iter().map(String::as_str));
            words.push("");
            let offered = bash_completes(&bash, name, &words);
            assert!(
                offered.contains(last),
                "bash completes `{}` without {last}: {offered:?}",
                words.join(" ")
            );
            let line = format!("{} ", words[..words.len() - 1].join(" "));
            let offered = fish_completes(&fish, &line);
            assert!(
                offered.contains(last),
                "fish completes `{line}` without {last}: {offered:?}"
            );
            // zsh lists each subcommand as `'NAME:about'` for _describe.
            assert!(
                zsh_script.contains(&format!("'{last}:")),
                "{} does not offer {last}",
                zsh.display()
            );
        }
        // Options too: a user who types `--` sees the documented ones.
        let offered = bash_completes(&bash, name, &[name, "--"]);
        assert!(offered.contains("--version"), "bash: {offered:?}");
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn man_pages_lint_clean_and_name_every_subcommand() {
    require("mandoc", "mandoc");
    require("groff", "groff-base");
    for (binary, section) in BINARIES {
        let name = name_of(binary);
        let dir = generated(binary, "man");
        let subcommands = subcommands(binary, &[]);
        let mut expected: BTreeSet<String> = subcommands
            .iter()
            .map(|path| format!("{name}-{}.{section}", path.join("-")))
            .collect();
        expected.insert(format!("{name}.{section}"));
        let pages: BTreeSet<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|file| file.ends_with(&format!(".{section}")))
            .collect();
        assert_eq!(pages, expected, "one page per command and subcommand");

        for page in &pages {
            let path = dir.join(page);
            // mandoc reports style notes too (long source lines); warnings and errors fail.
            let lint = run(Command::new("mandoc")
                .args(["-Tlint", "-W", "warning"])
                .arg(&path));
            assert!(
                lint.stdout.is_empty() && lint.stderr.is_empty(),
                "mandoc -Tlint {page}: {}{}",
                String::from_utf8_lossy(&lint.stdout),
                String::from_utf8_lossy(&lint.stderr)
            );
            let groff = run(Command::new("groff")
                .args(["-man", "-Tutf8", "-ww", "-z"])
                .arg(&path));
            assert!(
                groff.stderr.is_empty(),
                "groff -ww {page}: {}",
                String::from_utf8_lossy(&groff.stderr)
            );
            let text = stdout(Command::new("mandoc").args(["-Tutf8"]).arg(&path));
            let text = strip_overstrike(&text);
            let title = page.trim_end_matches(&format!(".{section}"));
            assert!(
                text.starts_with(&format!("{}({section})", title.to_uppercase())),
                "{page} renders with the title {title}: {text}"
            );
            let other = if section == "1" {
                "kya-agent(8)"
            } else {
                "kya(1)"
            };
            assert!(text.contains("SEE ALSO"), "{page}: {text}");
            assert!(text.contains(other), "{page} refers to {other}: {text}");
        }

        // The main page lists every subcommand by its page: kya-approve(1), kya-audit(1).
        let main = strip_overstrike(&stdout(
            Command::new("mandoc")
                .arg("-Tutf8")
                .arg(dir.join(format!("{name}.{section}"))),
        ));
        for path in subcommands.iter().filter(|path| path.len() == 1) {
            let reference = format!("{name}-{}({section})", path[0]);
            assert!(
                main.contains(&reference),
                "{name}.{section} lists no {reference}"
            );
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}

/// mandoc's terminal output as plain text: it emboldens with `c\bc` and underlines with `_\bc`.
fn strip_overstrike(text: &str) -> String {
    let mut plain: Vec<char> = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if chars.peek() == Some(&'\u{8}') {
            chars.next();
            continue;
        }
        plain.push(c);
    }
    plain.into_iter().collect()
}
