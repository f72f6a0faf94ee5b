//! The daemon's and the CLI's behaviour at their edges: config checks, bad input, shutdown.
use std::path::Path;

use kya_tests::{Fixture, kya, kya_agent, require_vm, scratch};

#[test]
fn check_config_names_file_line_column_value_and_fix() {
    require_vm();
    let dir = scratch("check_config_errors");
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[[agents]]\nname = \"Coder!\"\nowner = \"alice\"\n[agents.match]\nuid = [0]\ncolor = \"red\"\n",
    )
    .unwrap();
    let output = kya_agent(&["check-config", path.to_str().unwrap()]);
    assert!(!output.status.success(), "a bad config must fail the check");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file = path.display().to_string();
    assert!(
        stderr.contains(&format!("{file}:6:1")),
        "unknown key located: {stderr}"
    );
    assert!(stderr.contains("color"), "unknown key named: {stderr}");
}

#[test]
fn check_config_reports_every_validation_error() {
    require_vm();
    let dir = scratch("check_config_validation");
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[[agents]]\nname = \"Coder!\"\nowner = \"alice\"\n[agents.match]\nuid = [0]\n",
    )
    .unwrap();
    let output = kya_agent(&["check-config", path.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file = path.display().to_string();
    assert!(
        stderr.contains(&format!("{file}:2:8")),
        "bad name located: {stderr}"
    );
    assert!(
        stderr.contains(&format!("{file}:5:8")),
        "uid 0 located: {stderr}"
    );
    assert!(
        stderr.contains("fix:"),
        "each error says how to fix it: {stderr}"
    );
}

#[test]
fn check_config_warns_of_an_owner_and_an_approver_whose_accounts_are_gone() {
    require_vm();
    let dir = scratch("check_config_accounts");
    let path = dir.join("kya.toml");
    std::fs::write(
        &path,
        "[[agents]]\nname = \"coder\"\nowner = \"nosuchowner\"\n\
         approvers = [\"alice\", \"nosuchapprover\"]\n\
         [[agents]]\nname = \"ops\"\nowner = \"alice\"\n",
    )
    .unwrap();
    let output = kya_agent(&["check-config", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "a valid config: {stdout}");
    assert!(
        stdout.contains("warning: agent coder: its owner nosuchowner no longer exists"),
        "a missing owner is named: {stdout}"
    );
    assert!(
        stdout.contains("warning: agent coder: its approver nosuchapprover no longer exists"),
        "a missing approver is named: {stdout}"
    );
    assert!(
        !stdout.contains("its owner alice") && !stdout.contains("its approver alice"),
        "a living account is not warned of: {stdout}"
    );
}

#[test]
fn check_config_shows_what_rules_resolve_to() {
    let fixture = Fixture::new();
    if !std::path::Path::new("/etc/shadow").exists() {
        std::fs::write("/etc/shadow", "root:*:19000:0:99999:7:::\n").unwrap();
    }
    let dir = scratch("check_config_ok");
    let path = dir.join("kya.toml");
    std::fs::write(&path, &fixture.config).unwrap();
    let output = kya_agent(&["check-config", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "valid config: {stdout}");
    assert!(
        stdout.contains(&format!(
            "coder exe {} -> file dev",
            fixture.coder_exe.display()
        )),
        "exe resolved to a file identity: {stdout}"
    );
    assert!(
        stdout.contains("coder cgroup /agents/coder -> cgroup id"),
        "{stdout}"
    );
    assert!(stdout.contains("coder uid 1001 -> uid 1001"), "{stdout}");
    assert!(
        stdout.contains("/etc/shadow [all agents] catalogue (system secrets): password hashes"),
        "the catalogue is listed as resolved here: {stdout}"
    );
    assert!(
        stdout.contains("  databases:\n")
            && stdout.contains(
                "    ~/.pgpass: PostgreSQL passwords [PostgreSQL docs: the password file]"
            )
            && stdout.contains("    ~/.ssh/ (every file but the public ones"),
        "every catalogue entry is listed with its category, reason and source: {stdout}"
    );
    assert!(
        stdout.contains(".env and .env.* in any directory"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{} [all agents] catalogue: kya's config",
            path.display()
        )),
        "the daemon's own files are compiled as the daemon compiles them: {stdout}"
    );
}

#[test]
fn the_daemon_refuses_a_bad_config_before_loading_anything() {
    require_vm();
    let dir = scratch("daemon_bad_config");
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[[agents]]\nname = \"coder\"\n").unwrap();
    // Its own socket, state and pins, beside whatever daemon the other tests run.
    let socket = dir.join("kya.sock");
    let pins = Path::new("/sys/fs/bpf/kya-bad-config");
    let state = dir.join("state");
    let output = kya_agent(&[
        "--config",
        path.to_str().unwrap(),
        "--socket",
        socket.to_str().unwrap(),
        "--pin-dir",
        pins.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("owner"), "missing owner reported: {stderr}");
    // Nothing was loaded, nothing is serving.
    assert!(!pins.exists(), "a refused config pins nothing");
    assert!(!socket.exists(), "a refused config serves no socket");
    let ps = kya(&["--socket", socket.to_str().unwrap(), "ps"]);
    assert!(!ps.status.success());
    assert!(String::from_utf8_lossy(&ps.stderr).contains("cannot reach kya-agent"));
}
