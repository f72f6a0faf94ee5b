//! Config tests on small TOML snippets: what parses, what each mistake reports and where.

use std::path::{Path, PathBuf};

use super::{agent::MAX_USER_NAME_LEN, *};
use crate::network::canonical_cidr;

const FILE: &str = "/etc/kya/test.toml";

fn parse(text: &str) -> Config {
    Config::from_toml_str(text, Path::new(FILE)).unwrap_or_else(|errors| {
        panic!("expected a valid config, got:\n{errors}\n--- for:\n{text}")
    })
}

fn errors(text: &str) -> Vec<ConfigError> {
    match Config::from_toml_str(text, Path::new(FILE)) {
        Ok(config) => panic!("expected errors, got a valid config {config:?}\n--- for:\n{text}"),
        Err(errors) => errors.into_errors(),
    }
}

fn only_error(text: &str) -> ConfigError {
    let mut errors = errors(text);
    assert_eq!(
        errors.len(),
        1,
        "expected exactly one error, got:\n{}",
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    errors.remove(0)
}

#[track_caller]
fn assert_at(error: &ConfigError, line: usize, column: usize) {
    assert_eq!(
        (error.line(), error.column()),
        (Some(line), Some(column)),
        "expected the error at {line}:{column}:\n{error}"
    );
    assert_eq!(error.file(), Path::new(FILE), "wrong file in:\n{error}");
}

#[track_caller]
fn assert_mentions(error: &ConfigError, in_message: &str, in_fix: &str) {
    assert!(
        error.message().contains(in_message),
        "expected the message to mention {in_message:?}:\n{error}"
    );
    assert!(
        error.fix().contains(in_fix),
        "expected the fix to mention {in_fix:?}:\n{error}"
    );
}

/// A config with one agent called `name` owned by alice, with `rules` as its match table body.
fn agent(name: &str, rules: &str) -> String {
    format!("[[agents]]\nname = \"{name}\"\nowner = \"alice\"\n[agents.match]\n{rules}\n")
}

const EXAMPLE: &str = r#"
[[agents]]
name = "coder"
owner = "alice"                 # the accountable human
[agents.match]
exe = ["/usr/local/bin/coder-agent"]
cgroup = ["/agents/coder"]
uid = [1001]
"#;

#[test]
fn full_example_parses_with_its_values() {
    let config = parse(EXAMPLE);
    assert_eq!(config.origin(), Path::new(FILE));
    assert_eq!(config.agents().len(), 1, "expected one agent");
    let coder = &config.agents()[0];
    assert_eq!(coder.name(), "coder");
    assert_eq!(coder.owner(), "alice");
    assert_eq!(coder.id(), AgentId::from_name("coder"));
    assert_eq!(
        coder.rules().exe(),
        [PathBuf::from("/usr/local/bin/coder-agent")]
    );
    assert_eq!(coder.rules().cgroup(), [PathBuf::from("/agents/coder")]);
    assert_eq!(coder.rules().uid(), [1001]);
    assert!(config.warnings().is_empty(), "expected no warnings");
}

#[test]
fn match_and_its_lists_default_to_empty() {
    let config = parse("[[agents]]\nname = \"bare\"\nowner = \"alice\"\n");
    let bare = &config.agents()[0];
    assert!(bare.rules().is_empty(), "expected no rules: {bare:?}");

    let config = parse(&agent("partial", "uid = [1002]"));
    let partial = &config.agents()[0];
    assert!(partial.rules().exe().is_empty() && partial.rules().cgroup().is_empty());
    assert_eq!(partial.rules().uid(), [1002]);
}

#[test]
fn zero_agents_is_valid_with_a_warning() {
    for text in ["", "# nothing here\n", "agents = []\n"] {
        let config = parse(text);
        assert!(
            config.agents().is_empty(),
            "expected no agents for {text:?}"
        );
        let warnings = config.warnings();
        assert_eq!(
            warnings,
            [ConfigWarning::NoAgents {
                file: PathBuf::from(FILE)
            }]
        );
        assert!(warnings[0].to_string().contains("no [[agents]]"));
    }
}

#[test]
fn inline_tables_parse_too() {
    let config = parse(
        "agents = [{ name = \"a\", owner = \"bob\", match = { exe = [\"/bin/a\"], uid = [7] } }]\n",
    );
    assert_eq!(config.agents()[0].rules().exe(), [PathBuf::from("/bin/a")]);
    assert_eq!(config.agents()[0].rules().uid(), [7]);
}

#[test]
fn agents_are_found_by_name_and_by_id() {
    let text = format!("{}{}", agent("coder", ""), agent("reviewer", ""));
    let config = parse(&text);
    let reviewer = config
        .agent_by_name("reviewer")
        .expect("reviewer is defined");
    assert_eq!(reviewer.name(), "reviewer");
    assert_eq!(config.agent_by_id(reviewer.id()), Some(reviewer));
    assert_eq!(
        config
            .agent_by_id(AgentId::from_name("coder"))
            .map(Agent::name),
        Some("coder")
    );
    assert!(config.agent_by_name("nobody").is_none());
    assert!(config.agent_by_id(AgentId::from_name("nobody")).is_none());
}

#[test]
fn agent_ids_are_stable_and_nonzero() {
    // 32-bit FNV-1a, computed independently: if these change, tags written by an older daemon
    // would name the wrong agent.
    assert_eq!(AgentId::from_name("coder").get(), 3_469_596_402);
    assert_eq!(AgentId::from_name("reviewer").get(), 829_999_642);
    assert_eq!(AgentId::from_name("").get(), 0x811c_9dc5);
    // "akhnp9x" hashes to 0, which the kernel reads as "no agent".
    assert_eq!(AgentId::from_name("akhnp9x").get(), 1);
    assert_eq!(AgentId::from_raw(0), None);
    assert_eq!(
        AgentId::from_raw(3_469_596_402),
        Some(AgentId::from_name("coder"))
    );
    assert_eq!(u32::from(AgentId::from_name("coder")), 3_469_596_402);
}

#[test]
fn embedded_default_parses() {
    let config = Config::embedded_default();
    assert_eq!(
        config.agents().len(),
        1,
        "expected one agent in the default"
    );
    let coder = &config.agents()[0];
    assert_eq!(coder.name(), "coder");
    assert_eq!(coder.owner(), "root");
    assert!(
        coder.approvers().is_empty(),
        "the default lists no approvers"
    );
    assert_eq!(
        coder.rules().exe(),
        [PathBuf::from("/usr/local/bin/coder-agent")]
    );
    assert_eq!(coder.rules().cgroup(), [PathBuf::from("/agents/coder")]);
    assert!(coder.rules().uid().is_empty(), "the default tags no uid");
}

#[test]
fn agent_names_must_be_label_safe() {
    let too_long = "a".repeat(MAX_NAME_LEN + 1);
    for (name, suggestion) in [
        ("Coder", Some("\"coder\"")),
        ("my agent", Some("\"my-agent\"")),
        ("-coder", Some("\"coder\"")),
        ("_x", Some("\"x\"")),
        ("", None),
        ("é", None),
        (too_long.as_str(), None),
    ] {
        let error = only_error(&agent(name, ""));
        assert_at(&error, 2, 8);
        assert_mentions(&error, "invalid agent name", "lowercase letters");
        assert_eq!(error.value(), Some(format!("\"{name}\"").as_str()));
        if let Some(suggestion) = suggestion {
            assert!(
                error.fix().contains(suggestion),
                "expected the fix to suggest {suggestion}:\n{error}"
            );
        }
    }
    let longest = "a".repeat(MAX_NAME_LEN);
    for name in ["a", "0", "coder-2", "code_review", longest.as_str()] {
        parse(&agent(name, ""));
    }
}

#[test]
fn duplicate_agent_names_are_rejected() {
    let text = format!("{}{}", agent("coder", ""), agent("coder", ""));
    let error = only_error(&text);
    assert_at(&error, 7, 8);
    assert_mentions(&error, "duplicate agent name \"coder\"", "its own name");
    assert!(error.message().contains("line 2"), "{error}");
}

#[test]
fn agent_id_collisions_are_rejected() {
    assert_eq!(AgentId::from_name("bgpx_"), AgentId::from_name("b13ck"));
    let text = format!("{}{}", agent("bgpx_", ""), agent("b13ck", ""));
    let error = only_error(&text);
    assert_at(&error, 7, 8);
    assert_mentions(&error, "\"bgpx_\"", "rename one of the two agents");
    assert!(error.message().contains("2800276515"), "{error}");
}

#[test]
fn owner_must_not_be_empty() {
    for owner in ["", "   "] {
        let text = format!("[[agents]]\nname = \"coder\"\nowner = \"{owner}\"\n");
        let error = only_error(&text);
        assert_at(&error, 3, 9);
        assert_mentions(&error, "empty owner", "accountable");
    }
    let error = only_error("[[agents]]\nname = \"coder\"\n");
    assert_at(&error, 1, 1);
    assert_mentions(&error, "missing field `owner`", "add the missing key");
}

#[test]
fn on_owner_gone_is_contain_unless_stop_is_written() {
    let config = parse("[[agents]]\nname = \"coder\"\nowner = \"alice\"\n");
    assert_eq!(config.agents()[0].on_owner_gone(), OnOwnerGone::Contain);
    for (value, expected) in [
        ("contain", OnOwnerGone::Contain),
        ("stop", OnOwnerGone::Stop),
    ] {
        let text = format!(
            "[[agents]]\nname = \"coder\"\nowner = \"alice\"\non_owner_gone = \"{value}\"\n"
        );
        assert_eq!(parse(&text).agents()[0].on_owner_gone(), expected);
    }
}

#[test]
fn on_owner_gone_must_be_contain_or_stop() {
    let text = "[[agents]]\nname = \"coder\"\nowner = \"alice\"\non_owner_gone = \"kill\"\n";
    let error = only_error(text);
    assert_at(&error, 4, 17);
    assert_mentions(&error, "\"kill\"", "on_owner_gone = \"stop\"");
    assert_eq!(error.value(), Some("\"kill\""));
}

#[test]
fn a_suspended_agent_is_enforced_without_its_allowlists() {
    let text = r#"
[[agents]]
name = "coder"
owner = "alice"
[agents.files]
protect = ["/srv/secrets"]
allow = ["~/.aws"]
allow_writes = ["~/.bashrc"]
[agents.network]
allow = ["127.0.0.1:8080"]
unix_allow = ["/run/docker.sock"]
[[agents]]
name = "ops"
owner = "bob"
[agents.network]
allow = ["127.0.0.2:8080"]
"#;
    let config = parse(text);
    assert_eq!(
        config.enforced().as_ref(),
        &config,
        "nothing suspended, nothing changes"
    );
    let contained = config.clone().with_suspended(["coder", "not-an-agent"]);
    assert_eq!(contained.suspended().iter().collect::<Vec<_>>(), ["coder"]);
    let enforced = contained.enforced();
    let coder = enforced.agent_by_name("coder").unwrap();
    assert!(coder.files().allow().is_empty());
    assert!(coder.files().allow_writes().is_empty());
    assert_eq!(coder.files().protect().len(), 1, "protections stay");
    assert!(coder.network().allow().is_empty());
    assert!(coder.network().unix_allow().is_empty());
    assert!(!coder.network().allow_dns());
    assert_eq!(
        enforced.agent_by_name("ops"),
        config.agent_by_name("ops"),
        "other agents keep theirs"
    );
    // The config itself (what `kya status` and the explanations read) keeps its rules.
    assert_eq!(
        contained.agent_by_name("coder"),
        config.agent_by_name("coder")
    );
}

/// A config with one agent called coder owned by alice, with `list` as its approvers array body.
fn approvers(list: &str) -> String {
    format!("[[agents]]\nname = \"coder\"\nowner = \"alice\"\napprovers = [{list}]\n")
}

#[test]
fn approvers_are_kept_in_file_order() {
    let config = parse(&approvers(
        r#""bob", "alice", "root", "_svc", "build-bot", "host$""#,
    ));
    let coder = &config.agents()[0];
    assert_eq!(
        coder.approvers(),
        ["bob", "alice", "root", "_svc", "build-bot", "host$"]
    );
    for user in ["alice", "bob", "root", "host$"] {
        assert!(coder.may_be_approved_by(user), "{user} is listed");
    }
    for user in ["carol", "Alice", "alice ", "", "host"] {
        assert!(!coder.may_be_approved_by(user), "{user:?} is not listed");
    }

    let longest = "a".repeat(MAX_USER_NAME_LEN);
    let longest_with_dollar = format!("{}$", "a".repeat(MAX_USER_NAME_LEN - 1));
    for name in [
        "a",
        "_",
        "_$",
        "a-",
        "a0",
        longest.as_str(),
        &longest_with_dollar,
    ] {
        let config = parse(&approvers(&format!("\"{name}\"")));
        assert_eq!(config.agents()[0].approvers(), [name]);
    }

    // The same user may approve for several agents; whether the users exist is not checked.
    let text = format!(
        "{}{}",
        approvers("\"no-such-user-kya\""),
        "[[agents]]\nname = \"reviewer\"\nowner = \"alice\"\napprovers = [\"no-such-user-kya\"]\n"
    );
    let config = parse(&text);
    assert!(
        config
            .agents()
            .iter()
            .all(|agent| agent.may_be_approved_by("no-such-user-kya")),
        "{config:?}"
    );
}

#[test]
fn approvers_default_to_none() {
    for text in [
        "[[agents]]\nname = \"coder\"\nowner = \"alice\"\n".to_owned(),
        approvers(""),
    ] {
        let config = parse(&text);
        let coder = &config.agents()[0];
        assert!(
            coder.approvers().is_empty(),
            "expected no approvers: {coder:?}"
        );
        // Root's right to approve is the daemon's rule, not the config's.
        assert!(!coder.may_be_approved_by("root"), "{coder:?}");
        assert!(
            !coder.may_be_approved_by("alice"),
            "the owner is not implied: {coder:?}"
        );
    }
}

#[test]
fn approvers_must_be_user_names() {
    let too_long = "a".repeat(MAX_USER_NAME_LEN + 1);
    for (name, suggestion) in [
        ("Alice", Some("\"alice\"")),
        (" bob", Some("\"bob\"")),
        ("", None),
        ("1alice", None),
        ("-alice", None),
        ("al ice", None),
        ("al.ice", None),
        ("a$b", None),
        ("a$$", None),
        ("$", None),
        ("é", None),
        (too_long.as_str(), None),
    ] {
        let error = only_error(&approvers(&format!("\"bob\", \"{name}\"")));
        assert_at(&error, 4, 21);
        assert_mentions(&error, "not a valid user name", "1 to 32 lowercase letters");
        assert!(
            error.message().contains(&format!("{name:?}")) && error.message().contains("\"coder\""),
            "expected the name and the agent in the message:\n{error}"
        );
        assert_eq!(error.value(), Some(format!("\"{name}\"").as_str()));
        match suggestion {
            Some(suggestion) => assert!(
                error.fix().ends_with(&format!("for example {suggestion}")),
                "expected the fix to suggest {suggestion}:\n{error}"
            ),
            None => assert!(!error.fix().contains("for example"), "{error}"),
        }
    }

    let error = only_error(&approvers("\"bob\", \"Alice\""));
    assert_eq!(
        error.to_string(),
        format!(
            "{FILE}:4:21: approvers entry \"Alice\" of agent \"coder\" is not a valid user name: \
             user names match [a-z_][a-z0-9_-]*[$]? and are at most 32 characters long\n  \
             value: \"Alice\"\n  fix: write the user's login name as useradd accepts it: 1 to 32 \
             lowercase letters, digits, '_' or '-', starting with a letter or '_' (a final '$' is \
             allowed); the user need not exist yet, for example \"alice\""
        )
    );
    assert!(matches!(
        error.kind(),
        ConfigErrorKind::InvalidApprover { agent, name } if agent == "coder" && name == "Alice"
    ));

    let error = only_error(&approvers("\"bob\", 7"));
    assert_at(&error, 4, 21);
    assert_mentions(
        &error,
        "invalid type",
        "names and addresses are quoted strings",
    );
    let error =
        only_error("[[agents]]\nname = \"coder\"\nowner = \"alice\"\napprovers = \"bob\"\n");
    assert_at(&error, 4, 13);
    assert_mentions(&error, "invalid type", "lists are in [brackets]");
}

#[test]
fn approvers_must_not_repeat() {
    let error = only_error(&approvers(r#""bob", "alice", "bob""#));
    assert_at(&error, 4, 30);
    assert_mentions(
        &error,
        "approvers of agent \"coder\" list \"bob\" twice",
        "remove this \"bob\"",
    );
    assert_eq!(error.value(), Some("\"bob\""));
    assert!(matches!(
        error.kind(),
        ConfigErrorKind::DuplicateApprover { agent, name } if agent == "coder" && name == "bob"
    ));

    // Each repeat is reported; an invalid name is reported as invalid, however often.
    let errors = errors(&approvers(r#""bob", "bob", "bob", "Eve", "Eve""#));
    let kinds: Vec<_> = errors
        .iter()
        .map(|error| {
            let duplicate = matches!(error.kind(), ConfigErrorKind::DuplicateApprover { .. });
            (error.column(), duplicate)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (Some(21), true),
            (Some(28), true),
            (Some(35), false),
            (Some(42), false),
        ],
        "unexpected errors:\n{errors:#?}"
    );
}

#[test]
fn default_approvers_example_is_commented_out_and_valid() {
    let commented = "\n# approvers = [";
    assert!(
        DEFAULT_TOML.contains(commented),
        "expected a commented-out approvers example in the default config"
    );
    let config = parse(&DEFAULT_TOML.replacen(commented, "\napprovers = [", 1));
    assert_eq!(config.agents()[0].approvers(), ["alice", "bob"]);
}

#[test]
fn exe_paths_must_name_a_file_absolutely() {
    for (exe, in_message, in_fix) in [
        ("bin/coder", "does not start with '/'", "full path"),
        ("", "does not start with '/'", "full path"),
        ("/usr/bin/../coder", "'..'", "without '..'"),
        ("/usr/bin/", "ends with '/'", "trailing '/'"),
    ] {
        let error = only_error(&agent("coder", &format!("exe = [\"/ok\", \"{exe}\"]")));
        assert_at(&error, 5, 15);
        assert_mentions(&error, in_message, in_fix);
        assert!(error.message().contains("match.exe"), "{error}");
        assert_eq!(error.value(), Some(format!("\"{exe}\"").as_str()));
    }
}

#[test]
fn cgroup_paths_must_name_a_subtree() {
    for (cgroup, in_message, in_fix) in [
        (
            "agents/coder",
            "does not start with '/'",
            "relative to the cgroup2 mount",
        ),
        ("/", "cgroup2 root", "subtree"),
        ("/agents/../coder", "'..'", "without '..'"),
        ("/agents//coder", "'//'", "each '/' once"),
        ("/agents/coder/", "ends with '/'", "trailing '/'"),
        (
            "/sys/fs/cgroup/agents",
            "mount point",
            "leave out /sys/fs/cgroup",
        ),
    ] {
        let error = only_error(&agent("coder", &format!("cgroup = [\"{cgroup}\"]")));
        assert_at(&error, 5, 11);
        assert_mentions(&error, in_message, in_fix);
        assert!(error.message().contains("match.cgroup"), "{error}");
    }
    parse(&agent(
        "coder",
        "cgroup = [\"/sys.slice/x\", \"/sys/fs/cgroupx\"]",
    ));
}

#[test]
fn a_rule_in_two_agents_is_ambiguous() {
    let cases = [
        (
            "exe = [\"/usr/bin/coder\"]",
            "exe = [\"/usr//bin/coder\"]",
            "match.exe",
        ),
        (
            "cgroup = [\"/agents\"]",
            "cgroup = [\"/agents\"]",
            "match.cgroup",
        ),
        ("uid = [1001]", "uid = [1001]", "match.uid 1001"),
    ];
    for (first, second, in_message) in cases {
        let text = format!("{}{}", agent("coder", first), agent("reviewer", second));
        let error = only_error(&text);
        assert_eq!(error.line(), Some(10), "{error}");
        assert_mentions(&error, in_message, "only one agent");
        assert!(
            error.message().contains("\"reviewer\"") && error.message().contains("\"coder\""),
            "expected both agents named:\n{error}"
        );
    }
    // Repeating a rule within one agent is harmless.
    parse(&agent(
        "coder",
        "uid = [1001, 1001]\nexe = [\"/a\", \"/a\"]",
    ));
}

#[test]
fn uid_0_is_rejected() {
    let error = only_error(&agent("coder", "uid = [1001, 0]"));
    assert_at(&error, 5, 14);
    assert_mentions(
        &error,
        "uid 0",
        "tagging uid 0 would confine every root process; use exe or cgroup",
    );
    assert_eq!(error.value(), Some("0"));
}

#[test]
fn unknown_keys_are_located_and_the_allowed_ones_listed() {
    let error = only_error("# kya\nagent = []\n");
    assert_at(&error, 2, 1);
    assert_mentions(&error, "unknown field `agent`", "spelling");
    assert!(error.message().contains("`agents`"), "{error}");
    assert_eq!(error.value(), Some("agent = []"));

    let error = only_error("[[agents]]\nname = \"coder\"\nowner = \"alice\"\n  ower = \"bob\"\n");
    assert_at(&error, 4, 3);
    assert_mentions(&error, "unknown field `ower`", "spelling");
    for key in ["`name`", "`owner`", "`approvers`", "`match`"] {
        assert!(
            error.message().contains(key),
            "expected {key} listed:\n{error}"
        );
    }

    let error = only_error(&agent("coder", "exe = []\nexes = [\"/bin/x\"]"));
    assert_at(&error, 6, 1);
    assert_mentions(&error, "unknown field `exes`", "spelling");
    for key in ["`exe`", "`cgroup`", "`uid`"] {
        assert!(
            error.message().contains(key),
            "expected {key} listed:\n{error}"
        );
    }
}

#[test]
fn wrong_types_are_located() {
    let error = only_error(&agent("coder", "uid = \"x\""));
    assert_at(&error, 5, 7);
    assert_mentions(&error, "invalid type", "unquoted integers");
    assert_eq!(error.value(), Some("uid = \"x\""));

    let error = only_error(&agent("coder", "uid = [1, \"x\"]"));
    assert_at(&error, 5, 11);
    assert_mentions(&error, "expected u32", "unquoted integers");

    let error = only_error(&agent("coder", "uid = [-1]"));
    assert_at(&error, 5, 8);
    assert_mentions(&error, "invalid value", "unquoted integers");

    let error = only_error("[[agents]]\nname = 7\nowner = \"alice\"\n");
    assert_at(&error, 2, 8);
    assert_mentions(&error, "expected a string", "quoted strings");
}

#[test]
fn toml_syntax_errors_are_located() {
    let error = only_error("[[agents]]\nname = \"coder\"\nowner = alice\n");
    assert_at(&error, 3, 9);
    assert_mentions(&error, "invalid string", "TOML syntax");
    assert!(!error.message().contains('\n'), "one line: {error}");
    assert_eq!(error.value(), Some("owner = alice"));

    let error = only_error("[[agents]\n");
    assert_eq!(error.line(), Some(1), "{error}");
    assert_mentions(&error, "invalid table header", "TOML syntax");

    let error = only_error("[[agents]]\nname = \"a\"\nname = \"b\"\n");
    assert_eq!(error.line(), Some(3), "{error}");
    assert_mentions(&error, "duplicate key", "only one");
}

#[test]
fn columns_count_characters_not_bytes() {
    let error = only_error("# é\n[[agents]]\nname = \"é\"\nowner = \"x\"\n");
    assert_at(&error, 3, 8);
    assert_eq!(Location::of("éé\nx", 4), Location { line: 1, column: 3 });
    assert_eq!(Location::of("a\nb", 99), Location { line: 2, column: 2 });
}

#[test]
fn every_error_is_reported_in_file_order() {
    let text = r#"[[agents]]
name = "Coder"
owner = ""
[agents.match]
exe = ["coder"]
cgroup = ["/"]
uid = [0]

[[agents]]
name = "ok"
owner = "bob"
[agents.match]
exe = ["/bin/../x"]
"#;
    let errors = errors(text);
    let positions: Vec<_> = errors
        .iter()
        .map(|error| (error.line(), error.column()))
        .collect();
    assert_eq!(
        positions,
        [
            (Some(2), Some(8)),
            (Some(3), Some(9)),
            (Some(5), Some(8)),
            (Some(6), Some(11)),
            (Some(7), Some(8)),
            (Some(13), Some(8)),
        ],
        "unexpected errors:\n{errors:#?}"
    );

    let rendered = Config::from_toml_str(text, Path::new(FILE))
        .expect_err("the config is invalid")
        .to_string();
    let blocks: Vec<&str> = rendered.split("\n\n").collect();
    assert_eq!(blocks.len(), 6, "expected one block per error:\n{rendered}");
    assert_eq!(
        blocks[0],
        format!(
            "{FILE}:2:8: invalid agent name \"Coder\": names must match \
             [a-z0-9][a-z0-9_-]{{0,31}}\n  value: \"Coder\"\n  fix: {}",
            errors[0].fix()
        )
    );
    for block in blocks {
        let lines: Vec<&str> = block.lines().collect();
        assert!(lines[0].starts_with(&format!("{FILE}:")), "{block}");
        assert!(lines[1].starts_with("  value: "), "{block}");
        assert!(lines[2].starts_with("  fix: "), "{block}");
    }
}

#[test]
fn load_reads_the_file_and_names_it_when_it_cannot() {
    let dir = std::env::temp_dir().join(format!("kya-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");

    let good = dir.join("good.toml");
    std::fs::write(&good, EXAMPLE).expect("write the test config");
    let config = Config::load(&good).expect("the example config loads");
    assert_eq!(config.origin(), good);
    assert_eq!(config.agents()[0].name(), "coder");

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[agents]]\nname = \"x\"\nowner = \"\"\n").expect("write");
    let errors = Config::load(&bad).expect_err("the config is invalid");
    assert_eq!(errors.errors()[0].file(), bad);
    assert!(
        errors
            .to_string()
            .starts_with(&format!("{}:3:9:", bad.display()))
    );

    let missing = dir.join("missing.toml");
    let errors = Config::load(&missing).expect_err("the file does not exist");
    let error = &errors.errors()[0];
    assert_eq!(error.file(), missing);
    assert_eq!(error.line(), None);
    assert_mentions(error, "cannot read the config file", "create the file");
    assert!(
        error.message().contains("No such file"),
        "expected the OS error:\n{error}"
    );
    assert!(
        std::error::Error::source(error).is_some(),
        "expected the io::Error as the source"
    );
    assert!(
        errors
            .to_string()
            .starts_with(&format!("{}: cannot read", missing.display())),
        "{errors}"
    );

    std::fs::remove_dir_all(&dir).expect("remove the temporary directory");
}

/// A config with one agent called coder owned by alice, with `body` as its files table body.
fn files(body: &str) -> String {
    format!("[[agents]]\nname = \"coder\"\nowner = \"alice\"\n[agents.files]\n{body}\n")
}

#[track_caller]
fn pattern(text: &str) -> PathPattern {
    PathPattern::parse(text)
        .unwrap_or_else(|problem| panic!("expected {text:?} to be a valid pattern: {problem}"))
}

#[test]
fn files_example_parses_with_its_values() {
    let text = format!(
        "{EXAMPLE}[agents.files]\nprotect = [\"/srv/app/secrets/\", \"/opt/billing/token.txt\", \
         \"~/.config/acme/\"]\nallow = [\"~/.aws/config\"]\n"
    );
    let config = parse(&text);
    let coder = &config.agents()[0];
    assert_eq!(coder.rules().uid(), [1001], "the match table is unaffected");
    let files = coder.files();
    assert_eq!(
        files.protect(),
        [
            pattern("/srv/app/secrets/"),
            pattern("/opt/billing/token.txt"),
            pattern("~/.config/acme/"),
        ]
    );
    assert_eq!(files.allow(), [pattern("~/.aws/config")]);

    let secrets = &files.protect()[0];
    assert_eq!(secrets.base(), PatternBase::Absolute);
    assert_eq!(secrets.components(), ["srv", "app", "secrets"]);
    assert!(secrets.is_tree(), "a trailing '/' means a tree");
    let token = &files.protect()[1];
    assert!(!token.is_tree(), "no trailing '/' means one file");
    let acme = &files.protect()[2];
    assert_eq!(acme.base(), PatternBase::Home);
    assert_eq!(acme.components(), [".config", "acme"]);
    assert!(acme.is_tree());
    assert_eq!(files.allow()[0].base(), PatternBase::Home);
    assert!(!files.allow()[0].is_tree());
}

#[test]
fn files_and_its_lists_default_to_empty() {
    let config = parse(EXAMPLE);
    assert!(config.agents()[0].files().is_empty(), "no [agents.files]");
    assert!(
        Config::embedded_default().agents()[0].files().is_empty(),
        "the default's [agents.files] is commented out"
    );

    let config = parse(&files(""));
    assert!(config.agents()[0].files().is_empty(), "an empty table");

    let config = parse(&files("allow = [\"/etc/shadow\"]"));
    let only_allow = config.agents()[0].files();
    assert!(only_allow.protect().is_empty());
    assert_eq!(only_allow.allow(), [pattern("/etc/shadow")]);

    let config = parse(
        "agents = [{ name = \"a\", owner = \"bob\", files = { protect = [\"~/.secret\"] } }]\n",
    );
    assert_eq!(config.agents()[0].files().protect(), [pattern("~/.secret")]);
    assert!(config.agents()[0].rules().is_empty());
}

#[test]
fn files_repeats_and_allows_that_exempt_nothing_are_fine() {
    let config = parse(&files(
        "protect = [\"/srv/x\", \"/srv/x\"]\nallow = [\"/srv/x\", \"/not/protected/anywhere\"]",
    ));
    let rules = config.agents()[0].files();
    assert_eq!(rules.protect(), [pattern("/srv/x"), pattern("/srv/x")]);
    assert_eq!(
        rules.allow(),
        [pattern("/srv/x"), pattern("/not/protected/anywhere")]
    );
}

#[test]
fn files_patterns_must_be_absolute_or_home_paths() {
    for (path, in_message, in_fix) in [
        ("", "is empty", "write a path"),
        ("srv/app/secrets", "is relative", "start the path with '/'"),
        ("./secrets", "is relative", "'~/' for the same path"),
        ("~alice/.aws/", "another user's home", "/home/alice/"),
        ("~root", "another user's home", "absolute path"),
        ("/srv/../etc/shadow", "'..'", "without '..'"),
        ("~/../alice/.aws", "'..'", "without '..'"),
        ("/srv/./app", "'.' component", "without '.'"),
        ("/srv//app", "'//'", "each '/' once"),
        ("~//.aws", "'//'", "each '/' once"),
        ("//", "'//'", "each '/' once"),
        ("/", "root directory", "name the files or directories"),
        ("~/", "whole home directory", "in the home"),
        ("~", "whole home directory", "in the home"),
        ("~/.ssh/*", "glob character", "not supported in the config"),
        ("*.pem", "glob character", "end a directory with '/'"),
        ("/srv/key?", "glob character", "not supported"),
        ("/srv/[ab]", "glob character", "not supported"),
        ("/srv/a\\u0000b", "NUL", "remove the NUL"),
    ] {
        let error = only_error(&files(&format!("protect = [\"/ok\", \"{path}\"]")));
        assert_at(&error, 5, 19);
        assert_mentions(&error, in_message, in_fix);
        assert!(
            error
                .message()
                .contains("files.protect path of agent \"coder\""),
            "{error}"
        );
        assert_eq!(error.value(), Some(format!("\"{path}\"").as_str()));

        let error = only_error(&files(&format!("allow = [\"/ok\", \"{path}\"]")));
        assert_at(&error, 5, 17);
        assert_mentions(&error, in_message, in_fix);
        assert!(
            error
                .message()
                .contains("files.allow path of agent \"coder\""),
            "{error}"
        );
    }
}

#[test]
fn files_errors_are_all_reported_and_rendered_like_the_others() {
    let text = files("protect = [\"secrets\", \"/ok/\", \"/\"]\nallow = [\"~bob/x\"]");
    let errors = errors(&text);
    let positions: Vec<_> = errors
        .iter()
        .map(|error| (error.line(), error.column()))
        .collect();
    assert_eq!(
        positions,
        [
            (Some(5), Some(12)),
            (Some(5), Some(31)),
            (Some(6), Some(10))
        ],
        "unexpected errors:\n{errors:#?}"
    );
    assert!(matches!(
        errors[0].kind(),
        ConfigErrorKind::InvalidFilePattern {
            list: FileList::Protect,
            problem: PatternProblem::NotAbsolute,
            ..
        }
    ));
    assert!(matches!(
        errors[2].kind(),
        ConfigErrorKind::InvalidFilePattern {
            list: FileList::Allow,
            problem: PatternProblem::OtherUserHome,
            ..
        }
    ));
    assert_eq!(
        errors[1].to_string(),
        format!(
            "{FILE}:5:31: files.protect path of agent \"coder\" is the root directory '/', which \
             would cover every file on the host\n  value: \"/\"\n  fix: {}",
            PatternProblem::Root.fix()
        )
    );
}

#[test]
fn files_unknown_keys_and_wrong_types_are_located() {
    let error = only_error(&files("protect = []\nprotects = [\"/x\"]"));
    assert_at(&error, 6, 1);
    assert_mentions(&error, "unknown field `protects`", "spelling");
    for key in ["`protect`", "`allow`"] {
        assert!(
            error.message().contains(key),
            "expected {key} listed:\n{error}"
        );
    }

    let error = only_error("[[agents]]\nname = \"coder\"\nowner = \"alice\"\nfile = {}\n");
    assert_at(&error, 4, 1);
    assert!(error.message().contains("`files`"), "{error}");

    let error = only_error(&files("protect = \"/srv/secrets/\""));
    assert_at(&error, 5, 11);
    assert_mentions(&error, "invalid type", "lists are in [brackets]");
}

#[test]
fn path_patterns_display_in_config_form() {
    for text in [
        "/etc/shadow",
        "/srv/app/secrets/",
        "~/.aws/credentials",
        "~/.config/gcloud/",
        "/a",
        "~/a/",
        "/home/~/odd but valid",
    ] {
        let parsed = pattern(text);
        assert_eq!(parsed.to_string(), text, "Display must round-trip");
        assert_eq!(text.parse::<PathPattern>(), Ok(parsed));
    }
    assert_eq!("x".parse::<PathPattern>(), Err(PatternProblem::NotAbsolute));
}

#[test]
fn path_patterns_expand_once_or_per_home() {
    let homes = [PathBuf::from("/root"), PathBuf::from("/home/alice")];
    assert_eq!(
        pattern("/srv/app/secrets/").expand(&homes),
        [PathBuf::from("/srv/app/secrets")]
    );
    assert_eq!(
        pattern("/etc/shadow").expand(&[]),
        [PathBuf::from("/etc/shadow")],
        "an absolute pattern needs no home"
    );
    assert_eq!(
        pattern("~/.config/acme/").expand(&homes),
        [
            PathBuf::from("/root/.config/acme"),
            PathBuf::from("/home/alice/.config/acme"),
        ]
    );
    assert!(pattern("~/.netrc").expand(&[]).is_empty());
}

/// A config with one agent called coder owned by alice, with `body` as its network table body.
fn network_table(body: &str) -> String {
    format!("[[agents]]\nname = \"coder\"\nowner = \"alice\"\n[agents.network]\n{body}\n")
}

fn socket(path: &str) -> SocketAddress {
    SocketAddress::Path(PathBuf::from(path))
}

#[track_caller]
fn rule(text: &str) -> NetworkRule {
    NetworkRule::parse(text)
        .unwrap_or_else(|problem| panic!("expected {text:?} to be a valid rule: {problem}"))
}

#[track_caller]
fn host_net(addr: &str, prefix_len: u8) -> Target {
    let addr = addr
        .parse()
        .unwrap_or_else(|error| panic!("{addr:?} is an IP address: {error}"));
    Target::Cidr(
        IpCidr::new(addr, prefix_len)
            .unwrap_or_else(|| panic!("{addr}/{prefix_len} is a valid network")),
    )
}

const NETWORK_EXAMPLE: &str = r#"
[agents.network]
allow = [
  "127.0.0.2:8080",        # one address, one port
  "10.0.0.0/8:443",        # a CIDR and a port
  "[fd00::/8]:*",          # IPv6 CIDR, any port
  "[::1]:9000",            # IPv6 address
  "db.internal:5432",      # a host name, resolved by the daemon
  "localhost:*",
]
unix_deny = ["/run/containerd/containerd.sock"]
unix_allow = ["/var/run/docker.sock"]
allow_dns = true
"#;

#[test]
fn network_example_parses_with_its_values() {
    let config = parse(&format!("{EXAMPLE}{NETWORK_EXAMPLE}"));
    let coder = &config.agents()[0];
    assert_eq!(coder.rules().uid(), [1001], "the match table is unaffected");
    let network = coder.network();
    assert_eq!(
        network.allow(),
        [
            NetworkRule {
                target: host_net("127.0.0.2", 32),
                port: PortSpec::One(8080)
            },
            NetworkRule {
                target: host_net("10.0.0.0", 8),
                port: PortSpec::One(443)
            },
            NetworkRule {
                target: host_net("fd00::", 8),
                port: PortSpec::Any
            },
            NetworkRule {
                target: host_net("::1", 128),
                port: PortSpec::One(9000)
            },
            NetworkRule {
                target: Target::Host("db.internal".into()),
                port: PortSpec::One(5432)
            },
            NetworkRule {
                target: Target::Host("localhost".into()),
                port: PortSpec::Any
            },
        ]
    );
    assert_eq!(
        network.unix_deny(),
        [socket("/run/containerd/containerd.sock")]
    );
    assert_eq!(network.unix_allow(), [socket("/var/run/docker.sock")]);
    assert!(network.allow_dns());
}

#[test]
fn network_rules_take_every_form() {
    let text = network_table(
        "allow = [\"127.0.0.2:8080\", \"10.0.0.0/8:443\", \"0.0.0.0/0:*\", \"[fd00::/8]:*\", \
         \"[::/0]:1-1024\", \"[::1]:9000\", \"[::ffff:127.0.0.2]:80\", \"DB.Internal:5432\", \
         \"localhost:8000-8099\", \"10.1.2.3/32:65535\"]",
    );
    let config = parse(&text);
    let allow = config.agents()[0].network().allow();
    let expected = [
        (host_net("127.0.0.2", 32), PortSpec::One(8080)),
        (host_net("10.0.0.0", 8), PortSpec::One(443)),
        (host_net("0.0.0.0", 0), PortSpec::Any),
        (host_net("fd00::", 8), PortSpec::Any),
        (host_net("::", 0), PortSpec::Range(1, 1024)),
        (host_net("::1", 128), PortSpec::One(9000)),
        (host_net("::ffff:127.0.0.2", 128), PortSpec::One(80)),
        (Target::Host("db.internal".into()), PortSpec::One(5432)),
        (
            Target::Host("localhost".into()),
            PortSpec::Range(8000, 8099),
        ),
        (host_net("10.1.2.3", 32), PortSpec::One(65535)),
    ]
    .map(|(target, port)| NetworkRule { target, port });
    assert_eq!(allow, expected);

    // A mapped IPv6 address is the same peer as the IPv4 address.
    let Target::Cidr(mapped) = allow[6].target else {
        panic!("expected an address, got {:?}", allow[6]);
    };
    assert_eq!(
        canonical_cidr(mapped),
        canonical_cidr(IpCidr::host("127.0.0.2".parse().expect("an address")))
    );
}

#[test]
fn network_and_its_keys_default_to_no_peers_but_dns() {
    let config = parse(EXAMPLE);
    let network = config.agents()[0].network();
    assert_eq!(network, &NetworkRules::default(), "no [agents.network]");
    assert!(network.allow().is_empty());
    assert!(network.unix_deny().is_empty() && network.unix_allow().is_empty());
    assert!(network.allow_dns(), "allow_dns defaults to true");

    let config = parse(&network_table(""));
    assert_eq!(
        config.agents()[0].network(),
        &NetworkRules::default(),
        "an empty table"
    );

    let config = parse(&network_table("allow_dns = false"));
    let no_dns = config.agents()[0].network();
    assert!(!no_dns.allow_dns());
    assert!(no_dns.allow().is_empty());

    let config =
        parse("agents = [{ name = \"a\", owner = \"bob\", network = { allow = [\"x:1\"] } }]\n");
    let network = config.agents()[0].network();
    assert_eq!(network.allow(), [rule("x:1")]);
    assert!(network.allow_dns());
}

#[test]
fn network_repeats_and_allows_that_exempt_nothing_are_fine() {
    let config = parse(&network_table(
        "allow = [\"x:1\", \"X:1\"]\nunix_deny = [\"/run/a.sock\", \"/run/a.sock\"]\n\
         unix_allow = [\"/run/a.sock\", \"/not/a/default.sock\"]",
    ));
    let network = config.agents()[0].network();
    assert_eq!(network.allow(), [rule("x:1"), rule("x:1")]);
    assert_eq!(
        network.unix_deny(),
        [socket("/run/a.sock"), socket("/run/a.sock")]
    );
    assert_eq!(
        network.unix_allow(),
        [socket("/run/a.sock"), socket("/not/a/default.sock")]
    );
}

/// Asserts that `text`, second in `network.allow`, is reported at its position with a message
/// and a fix mentioning `in_message` and `in_fix`.
#[track_caller]
fn assert_rule_error(text: &str, in_message: &str, in_fix: &str) {
    let error = only_error(&network_table(&format!("allow = [\"ok:1\", \"{text}\"]")));
    assert_at(&error, 5, 18);
    assert_mentions(&error, in_message, in_fix);
    assert!(
        error
            .message()
            .starts_with("network.allow entry of agent \"coder\": "),
        "{error}"
    );
    assert!(
        matches!(error.kind(), ConfigErrorKind::InvalidNetworkRule { .. }),
        "{error}"
    );
    if text.chars().count() < 70 {
        assert_eq!(error.value(), Some(format!("\"{text}\"").as_str()));
    }
}

#[test]
fn network_rule_shape_mistakes_are_located_and_explained() {
    for (text, in_message, in_fix) in [
        ("", "empty rule", "remove the empty string"),
        ("10.0.0.1 :80", "whitespace", "\"10.0.0.1:80\""),
        ("a:b:c", "not an address", "ADDRESS:PORT"),
        (
            "::1:9000",
            "IPv6 address without brackets",
            "\"[::1]:9000\"",
        ),
        (
            "fd00::/8:443",
            "IPv6 address without brackets",
            "\"[fd00::/8]:443\"",
        ),
        ("::1", "IPv6 address without brackets", "\"[::1]:443\""),
        ("[::1:80", "'[' without a closing ']'", "close the bracket"),
        (
            "[::1]9000",
            "unexpected \"9000\" after ']'",
            "right after ']'",
        ),
        (
            "[10.0.0.1]:80",
            "\"10.0.0.1\" is in brackets, which are only",
            "\"10.0.0.1:80\"",
        ),
        (
            "[db.internal]:80",
            "only for IPv6 addresses",
            "\"db.internal:80\"",
        ),
        (":443", "missing address", "before the ':'"),
        (
            "*:443",
            "'*' is not an address",
            "\"0.0.0.0/0:443\" and \"[::/0]:443\"",
        ),
        (
            "10.0.0.1",
            "missing port",
            "\"10.0.0.1:443\", or \"10.0.0.1:*\"",
        ),
        ("10.0.0.1:", "missing port", "\"10.0.0.1:443\""),
        ("[::1]", "missing port", "\"[::1]:443\", or \"[::1]:*\""),
        ("db.internal", "missing port", "\"db.internal:443\""),
    ] {
        assert_rule_error(text, in_message, in_fix);
    }
}

#[test]
fn network_rule_address_mistakes_are_located_and_explained() {
    for (text, in_message, in_fix) in [
        (
            "10.0.0.256:80",
            "\"10.0.0.256\" is not a valid IPv4 address",
            "four numbers",
        ),
        (
            "010.0.0.1:80",
            "\"010.0.0.1\" is not a valid IPv4 address",
            "leading zeros",
        ),
        (
            "db/8:80",
            "\"db\" is not a valid IPv4 address",
            "host names do not",
        ),
        (
            "[fd00::g]:80",
            "\"fd00::g\" is not a valid IPv6 address",
            "[fd00::/8]:*",
        ),
        (
            "[fe80::1%eth0]:80",
            "is not a valid IPv6 address",
            "zone index",
        ),
        (
            "10.0.0.0/33:80",
            "prefix length \"33\" is not a number from 0 to 32",
            "0 to 32",
        ),
        ("10.0.0.0/:80", "prefix length \"\"", "0 to 32"),
        ("[fd00::/129]:80", "prefix length \"129\"", "0 to 128"),
        (
            "10.0.0.1/8:443",
            "10.0.0.1/8 has bits set past the prefix; the network is 10.0.0.0/8",
            "write the network address: \"10.0.0.0/8:443\"",
        ),
        (
            "[fd00::1/8]:*",
            "fd00::1/8 has bits set past the prefix; the network is fd00::/8",
            "write the network address: \"[fd00::/8]:*\"",
        ),
    ] {
        assert_rule_error(text, in_message, in_fix);
    }
}

#[test]
fn network_rule_host_name_mistakes_are_located_and_explained() {
    let long_host = format!("{}.com", "a".repeat(250));
    let long_label = format!("{}.com", "a".repeat(64));
    for (text, in_message, in_fix) in [
        (
            "db_1.internal:80",
            "host name contains '_'",
            "letters, digits, '-' and '.'",
        ),
        ("bücher.de:80", "host name contains 'ü'", "punycode"),
        (
            &long_host,
            "254 characters long, more than 253",
            "at most 253",
        ),
        ("db..internal:80", "empty part", "without '..'"),
        ("db.internal.:80", "empty part", "trailing '.'"),
        (&long_label, "longer than 63 characters", "at most 63"),
        (
            "-db.internal:80",
            "part \"-db\" starts or ends with '-'",
            "cannot start or end",
        ),
    ] {
        assert_rule_error(text, in_message, in_fix);
    }
}

#[test]
fn network_rule_port_mistakes_are_located_and_explained() {
    for (text, in_message, in_fix) in [
        (
            "10.0.0.1:http",
            "port \"http\" is not a number, a range or '*'",
            "1 to 65535",
        ),
        ("10.0.0.1:80-", "port \"80-\" is not a number", "8000-8099"),
        (
            "10.0.0.1:0",
            "port 0 is not a valid port",
            "or * for any port",
        ),
        ("10.0.0.1:0-80", "port 0 is not a valid port", "1 to 65535"),
        ("10.0.0.1:70000", "port 70000 is out of range", "1 to 65535"),
        (
            "10.0.0.1:8000-70000",
            "port 70000 is out of range",
            "1 to 65535",
        ),
        (
            "10.0.0.1:8099-8000",
            "port range 8099-8000 is inverted",
            "lower port first: 8000-8099",
        ),
    ] {
        assert_rule_error(text, in_message, in_fix);
    }
}

#[test]
fn network_rule_errors_render_like_the_others() {
    let error = only_error(&network_table("allow = [\"10.0.0.1:70000\"]"));
    assert_eq!(
        error.to_string(),
        format!(
            "{FILE}:5:10: network.allow entry of agent \"coder\": port 70000 is out of range (1 \
             to 65535)\n  value: \"10.0.0.1:70000\"\n  fix: write a port from 1 to 65535, a \
             range such as 8000-8099, or * for any port"
        )
    );
    let error = only_error(&network_table("allow = [\n  \"fd00::1:443\",\n]"));
    assert_at(&error, 6, 3);
    assert_eq!(
        error.to_string(),
        format!(
            "{FILE}:6:3: network.allow entry of agent \"coder\": IPv6 address without \
             brackets\n  value: \"fd00::1:443\"\n  fix: write an IPv6 address in [brackets] \
             before ':' and the port: \"[fd00::1]:443\", or \"[fd00::1:443]:443\" if all of it \
             is the address"
        )
    );
}

#[test]
fn sockets_are_absolute_exact_paths_or_abstract_names() {
    for (path, in_message, in_fix) in [
        ("", "is empty", "write the socket's path"),
        (
            "run/docker.sock",
            "starts with neither '/' nor '@'",
            "full path",
        ),
        (
            "~/agent.sock",
            "starts with neither '/' nor '@'",
            "\"@name\"",
        ),
        ("/run/../var/run/docker.sock", "'..'", "without '..'"),
        ("/run/./docker.sock", "'.' component", "without '.'"),
        ("/run//docker.sock", "'//'", "each '/' once"),
        ("/run/docker/", "ends with '/'", "trailing '/'"),
        ("/", "ends with '/'", "trailing '/'"),
        ("/run/*.sock", "glob character", "full path"),
        ("/tmp/ssh-?/agent.1", "glob character", "not supported"),
        ("/run/[ab].sock", "glob character", "not supported"),
        ("/run/a\\u0000b", "NUL", "remove the NUL"),
        ("@", "without an abstract socket name", "name after '@'"),
        ("@a\\u0000b", "NUL", "from the name"),
    ] {
        let error = only_error(&network_table(&format!(
            "unix_deny = [\"/ok\", \"{path}\"]"
        )));
        assert_at(&error, 5, 21);
        assert_mentions(&error, in_message, in_fix);
        assert!(
            error
                .message()
                .starts_with("network.unix_deny entry of agent \"coder\" "),
            "{error}"
        );
        assert_eq!(error.value(), Some(format!("\"{path}\"").as_str()));

        let error = only_error(&network_table(&format!(
            "unix_allow = [\"/ok\", \"{path}\"]"
        )));
        assert_at(&error, 5, 22);
        assert_mentions(&error, in_message, in_fix);
        assert!(
            error
                .message()
                .starts_with("network.unix_allow entry of agent \"coder\" "),
            "{error}"
        );
    }
}

#[test]
fn unix_lists_take_paths_and_abstract_names() {
    let config = parse(&network_table(
        "unix_allow = [\"/run/user/1000/app.sock\", \"@/tmp/.X11-unix/X0\", \"@kya test\"]\n\
         unix_deny = [\"@buildkitd\"]",
    ));
    let network = config.agents()[0].network();
    assert_eq!(
        network.unix_allow(),
        [
            socket("/run/user/1000/app.sock"),
            SocketAddress::Abstract(b"/tmp/.X11-unix/X0".to_vec()),
            SocketAddress::Abstract(b"kya test".to_vec()),
        ]
    );
    assert_eq!(
        network.unix_deny(),
        [SocketAddress::Abstract(b"buildkitd".to_vec())]
    );
    assert_eq!(network.unix_allow()[1].to_string(), "@/tmp/.X11-unix/X0");
}

#[test]
fn bad_abstract_names_name_the_file_line_value_and_fix() {
    let error = only_error(&network_table("unix_allow = [\"@ok\",\n  \"@\"]"));
    assert_at(&error, 6, 3);
    assert_eq!(error.value(), Some("\"@\""));
    let shown = error.to_string();
    assert!(
        shown.starts_with(&format!(
            "{FILE}:6:3: network.unix_allow entry of agent \"coder\" is '@' without an \
             abstract socket name"
        )),
        "{shown}"
    );
    assert!(
        shown.contains("fix: write the abstract socket's name after '@'"),
        "{shown}"
    );

    let long = "y".repeat(200);
    let error = only_error(&network_table(&format!("unix_deny = [\"@{long}\"]")));
    assert_at(&error, 5, 14);
    assert!(matches!(
        error.kind(),
        ConfigErrorKind::InvalidSocketPath {
            list: UnixList::Deny,
            problem: SocketPathProblem::AbstractTooLong { bytes: 200 },
            ..
        }
    ));
    assert_mentions(&error, "200 bytes", "at most 107 bytes");
}

#[test]
fn socket_path_parser_names_each_mistake() {
    assert_eq!(
        parse_socket_path("/var/run/docker.sock"),
        Ok(PathBuf::from("/var/run/docker.sock"))
    );
    assert_eq!(
        parse_socket_path("/run/user/1000/..hidden/x.sock"),
        Ok(PathBuf::from("/run/user/1000/..hidden/x.sock")),
        "'..' inside a name is not a component"
    );
    for (text, problem) in [
        ("", SocketPathProblem::Empty),
        ("/run/a\0b", SocketPathProblem::Nul),
        ("/run/*.sock", SocketPathProblem::Glob),
        ("*.sock", SocketPathProblem::Glob),
        ("/run/docker?.sock", SocketPathProblem::Glob),
        ("/run/[ab].sock", SocketPathProblem::Glob),
        ("run/docker.sock", SocketPathProblem::NotAbsolute),
        ("~/agent.sock", SocketPathProblem::NotAbsolute),
        ("/run/docker/", SocketPathProblem::TrailingSlash),
        ("/", SocketPathProblem::TrailingSlash),
        ("/run//docker.sock", SocketPathProblem::EmptyComponent),
        ("/run/./docker.sock", SocketPathProblem::CurrentComponent),
        (
            "/run/../var/run/docker.sock",
            SocketPathProblem::ParentComponent,
        ),
        ("/run/..", SocketPathProblem::ParentComponent),
    ] {
        assert_eq!(parse_socket_path(text), Err(problem), "for {text:?}");
        assert!(!problem.fix().is_empty() && !problem.to_string().is_empty());
    }
}

#[test]
fn network_errors_are_all_reported_in_file_order() {
    let text = network_table(
        "allow = [\"10.0.0.1\", \"ok:1\", \"x:0\"]\nunix_deny = [\"sock\"]\n\
         unix_allow = [\"/a/\"]",
    );
    let errors = errors(&text);
    let positions: Vec<_> = errors
        .iter()
        .map(|error| (error.line(), error.column()))
        .collect();
    assert_eq!(
        positions,
        [
            (Some(5), Some(10)),
            (Some(5), Some(30)),
            (Some(6), Some(14)),
            (Some(7), Some(15)),
        ],
        "unexpected errors:\n{errors:#?}"
    );
    assert!(matches!(
        errors[0].kind(),
        ConfigErrorKind::InvalidNetworkRule {
            problem: RuleProblem::MissingPort { .. },
            ..
        }
    ));
    assert!(matches!(
        errors[1].kind(),
        ConfigErrorKind::InvalidNetworkRule {
            problem: RuleProblem::PortZero,
            ..
        }
    ));
    assert!(matches!(
        errors[2].kind(),
        ConfigErrorKind::InvalidSocketPath {
            list: UnixList::Deny,
            problem: SocketPathProblem::NotAbsolute,
            ..
        }
    ));
    assert!(matches!(
        errors[3].kind(),
        ConfigErrorKind::InvalidSocketPath {
            list: UnixList::Allow,
            problem: SocketPathProblem::TrailingSlash,
            ..
        }
    ));
}

#[test]
fn network_unknown_keys_and_wrong_types_are_located() {
    let error = only_error(&network_table("allow = []\nallows = [\"x:1\"]"));
    assert_at(&error, 6, 1);
    assert_mentions(&error, "unknown field `allows`", "spelling");
    for key in ["`allow`", "`unix_deny`", "`unix_allow`", "`allow_dns`"] {
        assert!(
            error.message().contains(key),
            "expected {key} listed:\n{error}"
        );
    }

    let error = only_error("[[agents]]\nname = \"coder\"\nowner = \"alice\"\nnet = {}\n");
    assert_at(&error, 4, 1);
    assert!(error.message().contains("`network`"), "{error}");

    let error = only_error(&network_table("allow_dns = \"yes\""));
    assert_at(&error, 5, 13);
    assert_mentions(&error, "invalid type", "allow_dns is true or false");

    let error = only_error(&network_table("allow = \"10.0.0.1:80\""));
    assert_at(&error, 5, 9);
    assert_mentions(&error, "invalid type", "lists are in [brackets]");

    let error = only_error(&network_table("allow = [443]"));
    assert_at(&error, 5, 10);
    assert_mentions(&error, "invalid type", "addresses are quoted strings");
}

/// The lines of `DEFAULT_TOML` from the commented-out table header `header` to the next blank
/// line, uncommented.
fn uncommented_default_example(header: &str) -> String {
    let start = DEFAULT_TOML
        .find(&format!("# {header}\n"))
        .unwrap_or_else(|| panic!("expected a commented-out {header} in the default config"));
    DEFAULT_TOML[start..]
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .fold(String::new(), |mut example, line| {
            let uncommented = line.strip_prefix("# ").unwrap_or_else(|| {
                panic!("expected every line of the {header} example commented: {line:?}")
            });
            example.push_str(uncommented);
            example.push('\n');
            example
        })
}

#[test]
fn default_network_example_is_commented_out_and_valid() {
    assert_eq!(
        Config::embedded_default().agents()[0].network(),
        &NetworkRules::default(),
        "the default's [agents.network] is commented out"
    );
    let example = uncommented_default_example("[agents.network]");
    let config = parse(&format!("{DEFAULT_TOML}\n{example}"));
    let network = config.agents()[0].network();
    assert_eq!(
        network.allow(),
        [
            rule("10.0.0.0/8:443"),
            rule("[fd00::/8]:*"),
            rule("db.internal:5432"),
            rule("localhost:8000-8099"),
        ]
    );
    assert_eq!(
        network.unix_deny(),
        [socket("/run/buildkit/buildkitd.sock")]
    );
    assert_eq!(
        network.unix_allow(),
        [
            socket("/run/postgresql/.s.PGSQL.5432"),
            SocketAddress::Abstract(b"buildkitd".to_vec())
        ]
    );
    assert!(network.allow_dns());

    let example = uncommented_default_example("[agents.files]");
    let config = parse(&format!("{DEFAULT_TOML}\n{example}"));
    assert_eq!(
        config.agents()[0].files().allow(),
        [pattern("~/.aws/config")]
    );
}

#[test]
fn files_write_lists_parse_and_allow_writes_names_footholds_only() {
    let config = parse(&files(
        "protect_writes = [\"/opt/tool/hooks/\", \"~/.tool.conf\"]\n\
         allow_writes = [\"~/.profile\", \"/etc/cron.d/\", \"/etc/cron.d/backup\"]",
    ));
    let rules = config.agents()[0].files();
    assert!(!rules.is_empty());
    assert!(rules.protect().is_empty() && rules.allow().is_empty());
    assert_eq!(
        rules.protect_writes(),
        [pattern("/opt/tool/hooks/"), pattern("~/.tool.conf")]
    );
    assert_eq!(
        rules.allow_writes(),
        [
            pattern("~/.profile"),
            pattern("/etc/cron.d/"),
            pattern("/etc/cron.d/backup")
        ]
    );

    let error = only_error(&files(
        "allow_writes = [\"~/.profile\", \"~/.aws/credentials\"]",
    ));
    assert_at(&error, 5, 31);
    assert_mentions(
        &error,
        "neither an entry of the foothold catalogue",
        "check-config",
    );
    assert!(error.to_string().contains("~/.aws/credentials"), "{error}");

    let error = only_error(&files("protect_writes = [\"tool.conf\"]"));
    assert_at(&error, 5, 19);
    assert!(
        error
            .message()
            .contains("files.protect_writes path of agent \"coder\""),
        "{error}"
    );
    let error = only_error(&files("allow_writes = [\"/\"]"));
    assert!(
        error.message().contains("files.allow_writes path"),
        "{error}"
    );
}

mod verified_approvals {
    use super::*;

    const ALICE_KEY: &str = "ssh-ed25519 \
        AAAAC3NzaC1lZDI1NTE5AAAAILGHcIXrSNzLWS7o+2D49hIaRF2W7etGc6XJ8GlmfDzv alice@laptop";
    const BOB_KEY: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPyoge+NjnMJyBnU6Hnfql2FMO7BtQcQv9Fay8jWfJkOVG6jU7C5DFCo7jskiviFQWaL1dFHvh7F0i8Aj6k0ZUg= bob@box";

    fn agent(approval: &str) -> String {
        format!(
            "[[agents]]\nname = \"coder\"\nowner = \"alice\"\napprovers = [\"alice\"]\n\
             approval = \"{approval}\"\n[agents.match]\nuid = [1001]\n"
        )
    }

    #[test]
    fn approval_defaults_to_uid_and_keys_parse() {
        let config = parse(
            "[[agents]]\nname = \"coder\"\nowner = \"alice\"\n[agents.match]\nuid = [1001]\n",
        );
        assert_eq!(
            config.agent_by_name("coder").unwrap().approval(),
            ApprovalMethod::Uid
        );
        let text = format!(
            "{}\n[approver_keys]\nalice = [\"{ALICE_KEY}\"]\nbob = [\"{BOB_KEY}\"]\n",
            agent("ssh-key")
        );
        let config = parse(&text);
        assert_eq!(
            config.agent_by_name("coder").unwrap().approval(),
            ApprovalMethod::SshKey
        );
        assert_eq!(config.approver_keys("alice").len(), 1);
        assert_eq!(config.approver_keys("bob").len(), 1);
        assert!(config.approver_keys("carol").is_empty());
        assert_eq!(
            parse(&agent("totp"))
                .agent_by_name("coder")
                .unwrap()
                .approval(),
            ApprovalMethod::Totp
        );
        // root's key is enough for an agent without approvers.
        let text = format!(
            "[[agents]]\nname = \"coder\"\nowner = \"alice\"\napproval = \"ssh-key\"\n\
             [agents.match]\nuid = [1001]\n[approver_keys]\nroot = [\"{ALICE_KEY}\"]\n"
        );
        parse(&text);
    }

    #[test]
    fn an_unknown_method_is_refused_at_its_value() {
        let error = only_error(&agent("password"));
        assert_at(&error, 5, 12);
        assert_mentions(
            &error,
            "\"password\", not one of uid, ssh-key, totp",
            "ssh-key",
        );
        assert_eq!(error.value(), Some("\"password\""));
    }

    #[test]
    fn ssh_key_approvals_need_a_key_of_root_or_an_approver() {
        // bob has a key but may not approve for coder.
        let text = format!(
            "{}[approver_keys]\nbob = [\"{BOB_KEY}\"]\n",
            agent("ssh-key")
        );
        let error = only_error(&text);
        assert_at(&error, 5, 12);
        assert_mentions(
            &error,
            "none of those who may approve for it (root, alice) has a key",
            "add a public key line for at least one of root, alice",
        );
    }

    #[test]
    fn a_bad_key_line_is_refused_at_its_line() {
        let text = format!(
            "{}[approver_keys]\nalice = [\n  \"{ALICE_KEY}\",\n  \"ssh-ed25519 AAAAnotbase64 x\",\n  \"{ALICE_KEY}\",\n]\nBad = []\n",
            agent("ssh-key")
        );
        let errors = errors(&text);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert_at(&errors[0], 11, 3);
        assert_mentions(
            &errors[0],
            "entry of \"alice\" is not an OpenSSH public key",
            "paste the whole line",
        );
        assert_eq!(errors[0].value(), Some("\"ssh-ed25519 AAAAnotbase64 x\""));
        assert_at(&errors[1], 12, 3);
        assert_mentions(&errors[1], "same key twice", "remove the second copy");
        assert_at(&errors[2], 14, 1);
        assert_mentions(
            &errors[2],
            "\"Bad\", which is not a valid user name",
            "useradd",
        );
    }
}
