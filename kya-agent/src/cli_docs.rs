//! Shell completions (bash, zsh, fish) and man pages for `kya` and `kya-agent`, rendered from
//! the clap definitions each binary parses its own command line with, so they cannot drift from
//! it. Each binary answers a hidden `generate-docs DIR` subcommand (absent from its help, its
//! completions and its man pages) by writing these files into DIR; `cargo xtask install` and
//! `cargo xtask deb` run it and put the files where shells and `man` look for them.

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Arg, ArgMatches, Command, value_parser};
use clap_complete::Shell;
use clap_mangen::{
    Man,
    roff::{Roff, bold, roman},
};

/// The hidden subcommand that writes the files.
pub const GENERATE: &str = "generate-docs";

/// The shells completions are written for. Their files: `NAME.bash`, `_NAME`, `NAME.fish`.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// How a binary's man pages are filed.
#[derive(Clone, Copy, Debug)]
pub struct Manual {
    /// The man section: 1 for user commands, 8 for daemons and administration.
    pub section: &'static str,
    /// Pages of the other binary, for every page's SEE ALSO, such as `kya-agent(8)`.
    pub see_also: &'static [&'static str],
}

/// `kya`: a user command.
pub const KYA: Manual = Manual {
    section: "1",
    see_also: &["kya-agent(8)"],
};

/// `kya-agent`: the daemon and its administration commands.
pub const KYA_AGENT: Manual = Manual {
    section: "8",
    see_also: &["kya(1)"],
};

/// The heading an `after_long_help` starts with when it holds examples: the man pages give
/// them a section of their own.
const EXAMPLES_HEADING: &str = "Examples:";

/// `cli` with the hidden `generate-docs DIR` subcommand added. Parse with this, then hand the
/// plain `cli` to [`generate`] so the files never mention the generator.
#[must_use]
pub fn with_generator(cli: Command) -> Command {
    cli.subcommand(
        Command::new(GENERATE)
            .hide(true)
            .about("Write shell completions and man pages into DIR (for installers)")
            .arg(
                Arg::new("dir")
                    .value_name("DIR")
                    .required(true)
                    .value_parser(value_parser!(PathBuf)),
            ),
    )
}

/// The directory asked for when the command line was `generate-docs DIR`.
#[must_use]
pub fn requested(matches: &ArgMatches) -> Option<PathBuf> {
    match matches.subcommand() {
        Some((GENERATE, sub)) => sub.get_one::<PathBuf>("dir").cloned(),
        _ => None,
    }
}

/// `generate-docs DIR`: writes the files and prints their paths, one a line.
pub fn run(cli: Command, manual: Manual, dir: &Path) -> ExitCode {
    let name = cli.get_name().to_owned();
    match generate(cli, manual, dir) {
        Ok(files) => {
            for file in files {
                println!("{}", file.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{name} {GENERATE}: writing into {}: {error}", dir.display());
            ExitCode::FAILURE
        }
    }
}

/// Writes into `dir` (created if missing) the completion script for each of [`SHELLS`] and one
/// man page for the command and for each of its subcommands, `kya.1`, `kya-approve.1`,
/// `kya-audit-verify.1` and so on, as clap_mangen names them. Returns the paths written.
pub fn generate(cli: Command, manual: Manual, dir: &Path) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    // The pages document what a user types; `help` is documented by `--help` on each page.
    let mut cli = cli.disable_help_subcommand(true);
    cli.build();
    let name = cli.get_name().to_owned();
    let mut files = Vec::new();
    for shell in SHELLS {
        files.push(clap_complete::generate_to(
            shell,
            &mut cli.clone(),
            &name,
            dir,
        )?);
    }
    let mut see_also: Vec<String> = manual
        .see_also
        .iter()
        .map(|&page| page.to_owned())
        .collect();
    let title = Title {
        section: manual.section,
        date: date(),
        source: format!("{name} {}", cli.get_version().unwrap_or_default())
            .trim_end()
            .to_owned(),
    };
    write_pages(&cli, &title, &mut see_also, dir, &mut files)?;
    Ok(files)
}

/// The page of `cmd` and, below it, those of its visible subcommands; each subcommand's page
/// also refers back to its parent's.
fn write_pages(
    cmd: &Command,
    title: &Title,
    see_also: &mut Vec<String>,
    dir: &Path,
    files: &mut Vec<PathBuf>,
) -> io::Result<()> {
    let path = dir.join(format!("{}.{}", page_name(cmd), title.section));
    fs::write(&path, page(cmd, title, see_also)?)?;
    files.push(path);
    see_also.insert(0, format!("{}({})", page_name(cmd), title.section));
    for sub in cmd.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_pages(sub, title, see_also, dir, files)?;
    }
    see_also.remove(0);
    Ok(())
}

/// What every page's `.TH` line says besides its title.
struct Title {
    section: &'static str,
    /// YYYY-MM-DD.
    date: String,
    /// The package and its version: `kya 0.1.0`.
    source: String,
}

/// The pages' date: that of `SOURCE_DATE_EPOCH` when it is set (reproducible builds set it, so
/// the same source gives the same pages), otherwise today's (UTC).
fn date() -> String {
    let seconds = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|epoch| epoch.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_secs())
        });
    let (year, month, day) = civil_date(seconds / 86_400);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The calendar date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`, for days on
/// or after the epoch).
fn civil_date(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

/// `kya-approve` for `kya approve`: clap's display name once the command is built.
fn page_name(cmd: &Command) -> &str {
    cmd.get_display_name().unwrap_or_else(|| cmd.get_name())
}

/// One page: clap_mangen's sections, with the examples of `after_long_help` as EXAMPLES and a
/// SEE ALSO naming the related pages.
fn page(cmd: &Command, title: &Title, see_also: &[String]) -> io::Result<Vec<u8>> {
    let Title {
        section,
        date,
        source,
    } = title;
    let man = Man::new(cmd.clone()).section(*section);
    // Every renderer starts its output with the same preamble (a string for apostrophes);
    // the page needs it once, before the title.
    let preamble = Roff::new().render();
    let mut out = preamble.clone().into_bytes();
    // Written here rather than by clap_mangen, whose subcommand pages name the subcommand
    // (without the package or its version) as their source; titles are in capitals as usual.
    writeln!(
        out,
        ".TH {} {section} {date} \"{source}\"",
        page_name(cmd).to_uppercase().replace('-', "\\-"),
    )?;
    let mut add = |render: &dyn Fn(&mut dyn Write) -> io::Result<()>| -> io::Result<()> {
        let mut text = Vec::new();
        render(&mut text)?;
        out.extend_from_slice(text.strip_prefix(preamble.as_bytes()).unwrap_or(&text));
        Ok(())
    };
    add(&|w| man.render_name_section(w))?;
    add(&|w| man.render_synopsis_section(w))?;
    add(&|w| man.render_description_section(w))?;
    if cmd.get_arguments().any(|arg| !arg.is_hide_set()) {
        add(&|w| man.render_options_section(w))?;
    }
    if cmd.get_subcommands().any(|sub| !sub.is_hide_set()) {
        add(&|w| man.render_subcommands_section(w))?;
    }
    let extra = extra_sections(cmd, see_also);
    add(&|w| extra.to_writer(w))?;
    if cmd.get_version().is_some() {
        add(&|w| man.render_version_section(w))?;
    }
    Ok(out)
}

/// EXAMPLES, from an `after_long_help` that starts with [`EXAMPLES_HEADING`], kept as written
/// (commands and their comments line up); any other `after_long_help` as NOTES; and SEE ALSO.
fn extra_sections(cmd: &Command, see_also: &[String]) -> Roff {
    let mut roff = Roff::new();
    if let Some(after) = cmd.get_after_long_help() {
        let after = after.to_string();
        if let Some(examples) = after.strip_prefix(EXAMPLES_HEADING) {
            roff.control("SH", ["EXAMPLES"]);
            let lines: Vec<&str> = examples.trim_matches('\n').lines().collect();
            let indent = lines
                .iter()
                .filter(|line| !line.trim().is_empty())
                .map(|line| line.len() - line.trim_start().len())
                .min()
                .unwrap_or(0);
            roff.control("nf", []);
            for line in lines {
                roff.text([roman(line.get(indent..).unwrap_or(""))]);
            }
            roff.control("fi", []);
        } else {
            roff.control("SH", ["NOTES"]);
            for paragraph in after.split("\n\n") {
                roff.control("PP", []);
                roff.text([roman(paragraph.trim())]);
            }
        }
    }
    if !see_also.is_empty() {
        roff.control("SH", ["SEE ALSO"]);
        let last = see_also.len() - 1;
        for (index, page) in see_also.iter().enumerate() {
            let (name, section) = page.split_once('(').unwrap_or((page, ""));
            let separator = if index == last { "" } else { "," };
            roff.text([bold(name), roman(format!("({section}{separator}"))]);
        }
    }
    roff
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Command {
        Command::new("tool")
            .version("1.2.3")
            .about("Does things")
            .arg(Arg::new("socket").long("socket").value_name("PATH"))
            .subcommand(
                Command::new("approve")
                    .about("Approve a request")
                    .after_long_help(
                        "Examples:\n  tool approve r1 --once   # one use\n  tool approve r2\n",
                    ),
            )
            .subcommand(
                Command::new("audit")
                    .about("Check the trail")
                    .subcommand(Command::new("verify").about("Verify it")),
            )
            .subcommand(Command::new("secret").hide(true))
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kya-cli-docs-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn writes_three_completions_and_a_page_per_visible_command() {
        let dir = temp_dir("files");
        let files = generate(sample(), KYA, &dir).unwrap();
        let mut names: Vec<String> = files
            .iter()
            .map(|file| file.strip_prefix(&dir).unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "_tool",
                "tool-approve.1",
                "tool-audit-verify.1",
                "tool-audit.1",
                "tool.1",
                "tool.bash",
                "tool.fish",
            ],
            "the hidden subcommand and `help` get no page"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn examples_get_a_section_and_pages_refer_to_their_parents() {
        let dir = temp_dir("pages");
        generate(sample(), KYA_AGENT, &dir).unwrap();
        let page = fs::read_to_string(dir.join("tool-approve.8")).unwrap();
        assert!(page.starts_with(&Roff::new().render()), "{page}");
        assert_eq!(
            page.matches(".ds Aq").count(),
            2,
            "one preamble (.ie/.el):\n{page}"
        );
        let date = date();
        assert!(
            page.contains(&format!("\n.TH TOOL\\-APPROVE 8 {date} \"tool 1.2.3\"\n")),
            "{page}"
        );
        assert!(
            page.contains(
                ".SH EXAMPLES\n.nf\ntool approve r1 \\-\\-once   # one use\ntool approve r2\n.fi\n"
            ),
            "{page}"
        );
        assert!(
            page.contains(".SH \"SEE ALSO\"\n\\fBtool\\fR(8),\n\\fBkya\\fR(1)\n"),
            "{page}"
        );
        let verify = fs::read_to_string(dir.join("tool-audit-verify.8")).unwrap();
        assert!(
            verify.contains("\\fBtool\\-audit\\fR(8),\n\\fBtool\\fR(8),\n\\fBkya\\fR(1)"),
            "{verify}"
        );
        let top = fs::read_to_string(dir.join("tool.8")).unwrap();
        assert!(top.contains(".SH VERSION"), "{top}");
        assert!(
            !top.contains("secret"),
            "hidden subcommand documented:\n{top}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dates_are_calendar_dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(59), (1970, 3, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(11_017), (2000, 3, 1));
        assert_eq!(civil_date(20_818), (2026, 12, 31));
        assert_eq!(civil_date(20_819), (2027, 1, 1));
    }

    #[test]
    fn the_generator_is_parsed_but_never_documented() {
        let matches = with_generator(sample())
            .try_get_matches_from(["tool", GENERATE, "/tmp/out"])
            .unwrap();
        assert_eq!(requested(&matches), Some(PathBuf::from("/tmp/out")));
        let matches = with_generator(sample())
            .try_get_matches_from(["tool", "approve"])
            .unwrap();
        assert_eq!(requested(&matches), None);
    }
}
