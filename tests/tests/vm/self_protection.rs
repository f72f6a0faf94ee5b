//! kya protects itself: an agent, even running as root, cannot signal kya-agent (or any process
//! outside its agent), cannot use bpf(2) to reach kya's programs and maps, cannot shed its tag
//! by leaving its cgroup, cannot reach kya's control socket, state or config, and cannot change
//! kya's binaries or unit.
use std::{fs, path::Path, process::Command, time::Duration};

use kya_tests::{
    Daemon, EPERM, Fixture, OpResult, Probe, SCRATCH, STATE_DIR, bin, events, eventually, op,
    op_exe, op_with_fd,
};

#[test]
fn an_agent_cannot_signal_the_daemon_or_processes_outside_its_agent() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture.config);
    let daemon_pid = daemon.pid().to_string();
    for signal in ["19", "15", "9"] {
        // SIGSTOP, SIGTERM, SIGKILL
        assert_eq!(
            op(Some("coder"), &["signal", &daemon_pid, signal]),
            Err(EPERM),
            "signal {signal} to kya-agent"
        );
    }
    let stat = std::fs::read_to_string(format!("/proc/{daemon_pid}/stat")).unwrap();
    let state = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .next()
        .unwrap();
    assert_ne!(state, "T", "kya-agent must not be stopped");
    let _ = daemon.ps(); // and it still answers
    let bystander = Probe::plain(&["self"]);
    let bystander_pid = bystander.pid().to_string();
    assert_eq!(
        op(Some("coder"), &["signal", &bystander_pid, "15"]),
        Err(EPERM),
        "an untagged process"
    );
    let other_agent = Probe::start(&fixture.ops_exe, &["self"]);
    assert_eq!(
        op_exe(
            &fixture.coder_exe,
            &["signal", &other_agent.pid().to_string(), "15"]
        ),
        Err(EPERM),
        "another agent's process"
    );
    // Its own processes, and existence checks, are fine; untagged processes are unaffected.
    let own = Probe::start(&fixture.coder_exe, &["self"]);
    assert!(
        op_exe(
            &fixture.coder_exe,
            &["signal", &own.pid().to_string(), "10"]
        )
        .is_ok()
    );
    assert!(op(Some("coder"), &["signal", &daemon_pid, "0"]).is_ok());
    assert!(op(None, &["signal", &bystander_pid, "0"]).is_ok());
    assert!(eventually(std::time::Duration::from_secs(10), || {
        events()
            .iter()
            .any(|event| event["kind"] == "signal" && event["target_pid"] == daemon.pid())
    }));
}

#[test]
fn an_agent_cannot_use_bpf_or_shed_its_tag() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture.config);
    assert_eq!(op(Some("coder"), &["bpf-map-create"]), Err(EPERM));
    assert!(
        op(None, &["bpf-map-create"]).is_ok(),
        "root outside agents may"
    );
    assert!(eventually(std::time::Duration::from_secs(10), || {
        events().iter().any(|event| event["kind"] == "bpf")
    }));
    // Leaving every agent cgroup for the root cgroup keeps the tag (and so every rule).
    let escaped = Probe::as_agent("coder", &["cgroup", "/"]);
    daemon.assert_tagged(escaped.pid(), "coder", "run");
}

/// An installed unit file, a unit path with nothing installed yet, and a drop-in directory
/// that does not exist, as a host with kya installed through `/etc` would have them.
const UNIT: &str = "/etc/systemd/system/kya-agent.service";
const MISSING_UNIT: &str = "/run/systemd/system/kya-agent.service";
const MISSING_DROP_IN: &str = "/etc/systemd/system/kya-agent.service.d";

fn assert_refused(result: &OpResult, what: &str) {
    assert_eq!(result, &Err(EPERM), "{what} must be refused with EPERM");
}

fn assert_done(result: &OpResult, what: &str) {
    assert!(result.is_ok(), "{what} must succeed, got {result:?}");
}

#[test]
fn an_agent_can_run_kya_but_cannot_change_its_binaries_unit_config_or_state() {
    let fixture = Fixture::new();
    fs::create_dir_all("/etc/systemd/system").unwrap();
    fs::create_dir_all("/run/systemd/system").unwrap();
    fs::write(UNIT, "[Unit]\nDescription=kya\n").unwrap();
    let _ = fs::remove_file(MISSING_UNIT);
    let _ = fs::remove_dir_all(MISSING_DROP_IN);
    let daemon = Daemon::start(&fixture.config);
    let kya_bin = bin("kya");
    let kya_path = kya_bin.to_str().unwrap();
    let daemon_bin = bin("kya-agent");
    let daemon_path = daemon_bin.to_str().unwrap();
    let config = Path::new(SCRATCH).join("kya.toml");
    let config = config.to_str().unwrap();
    let coder = |args: &[&str]| op(Some("coder"), args);

    // Agents may read and run kya's binaries and read its unit.
    assert_done(&coder(&["read", kya_path]), "reading kya");
    assert_done(&coder(&["read", UNIT]), "reading the unit");
    let version = Command::new(&kya_bin)
        .args(["run", "--agent", "coder", "--", kya_path, "--version"])
        .output()
        .unwrap();
    assert!(version.status.success(), "an agent runs kya: {version:?}");

    // Nothing of them may change.
    for path in [kya_path, UNIT] {
        assert_refused(&coder(&["open-write", path]), &format!("writing {path}"));
        assert_not_truncated(path);
        assert_refused(&coder(&["chmod", path, "777"]), &format!("chmod of {path}"));
        assert_refused(
            &coder(&["chown", path, "1001"]),
            &format!("chown of {path}"),
        );
        assert_refused(&coder(&["unlink", path]), &format!("deleting {path}"));
        assert_refused(
            &coder(&["rename", path, &format!("{path}.moved")]),
            &format!("moving {path}"),
        );
    }
    // A descriptor open for writing, inherited from before the tag, truncates nothing either.
    let unit = fs::OpenOptions::new().write(true).open(UNIT).unwrap();
    assert_refused(
        &op_with_fd(Some("coder"), &unit, &["ftruncate-fd", "3"]),
        "ftruncate through an inherited descriptor of the unit",
    );
    // The running daemon's binary (the kernel refuses writing it anyway, with ETXTBSY).
    assert_refused(&coder(&["chmod", daemon_path, "644"]), "chmod of kya-agent");
    assert_refused(&coder(&["unlink", daemon_path]), "deleting kya-agent");
    assert_refused(
        &coder(&["rename", daemon_path, &format!("{daemon_path}.moved")]),
        "moving kya-agent",
    );
    // A unit where none is installed, or a drop-in, cannot be created in any form.
    assert_refused(&coder(&["create", MISSING_UNIT]), "creating a unit");
    assert_refused(
        &coder(&["symlink", "/tmp/x", MISSING_UNIT]),
        "a unit symlink",
    );
    assert_refused(&coder(&["mkdir", MISSING_DROP_IN]), "a drop-in directory");
    fs::write("/run/agent-unit", "[Service]\n").unwrap();
    assert_refused(
        &coder(&["rename", "/run/agent-unit", MISSING_UNIT]),
        "moving a file in as the unit",
    );
    assert_refused(
        &coder(&["link", "/run/agent-unit", MISSING_UNIT]),
        "linking a file in as the unit",
    );
    assert!(!Path::new(MISSING_UNIT).exists() && !Path::new(MISSING_DROP_IN).exists());
    // The config and the state directory: no truncation, mode or owner change, no new entry.
    assert_refused(&coder(&["truncate", config]), "truncating the config");
    assert_refused(&coder(&["chmod", config, "666"]), "chmod of the config");
    let planted = format!("{STATE_DIR}/planted.json");
    assert_refused(
        &coder(&["create", &planted]),
        "a new file in the state directory",
    );
    assert_refused(
        &coder(&["symlink", "/tmp/x", &planted]),
        "a symlink in the state directory",
    );
    assert!(fs::read_to_string(config).unwrap().contains("[[agents]]"));
    assert!(eventually(Duration::from_secs(10), || {
        events().iter().any(|event| event["kind"] == "file-change")
    }));

    assert_own_files_and_root_are_free(kya_path);
    drop(daemon);
    let _ = fs::remove_file(MISSING_UNIT);
    let _ = fs::remove_dir_all(MISSING_DROP_IN);
    let _ = fs::remove_dir_all("/tmp/agent-own-dir");
    for path in [
        "/tmp/agent-own-file",
        "/tmp/agent-own-link",
        "/run/agent-unit",
    ] {
        let _ = fs::remove_file(path);
    }
}

/// The operations refused on kya's files work on an agent's own files; and root outside
/// agents may change kya's files (that is how kya is upgraded).
/// Agent `coder` truncates `path` neither by path nor by an `O_TRUNC` open that only reads
/// (6.1 checks both as `path_truncate`, later kernels the open as `file_truncate`).
fn assert_not_truncated(path: &str) {
    let size = fs::metadata(path).unwrap().len();
    assert_refused(
        &op(Some("coder"), &["truncate", path]),
        &format!("truncating {path}"),
    );
    assert_refused(
        &op(Some("coder"), &["open-trunc", path]),
        &format!("an O_TRUNC open of {path} that only reads"),
    );
    assert_eq!(
        fs::metadata(path).unwrap().len(),
        size,
        "{path} kept its size"
    );
}

fn assert_own_files_and_root_are_free(kya_path: &str) {
    let coder = |args: &[&str]| op(Some("coder"), args);
    let own = "/tmp/agent-own-file";
    assert_done(&coder(&["create", own]), "creating its own file");
    assert_done(&coder(&["open-write", own]), "writing its own file");
    assert_done(&coder(&["truncate", own]), "truncating its own file");
    assert_done(&coder(&["chmod", own, "600"]), "chmod of its own file");
    assert_done(
        &coder(&["symlink", own, "/tmp/agent-own-link"]),
        "its own symlink",
    );
    assert_done(
        &coder(&["mkdir", "/tmp/agent-own-dir"]),
        "its own directory",
    );
    assert_done(&op(None, &["open-write", UNIT]), "root writing the unit");
    assert_done(&op(None, &["chmod", kya_path, "755"]), "root chmod of kya");
    assert_done(
        &op(None, &["create", MISSING_UNIT]),
        "root installing a unit",
    );
    assert_done(
        &op(None, &["mkdir", MISSING_DROP_IN]),
        "root making a drop-in directory",
    );
}

/// A generator directory that exists, with a generator in it, and one that does not.
const GENERATORS: &str = "/usr/lib/systemd/system-generators";
const MISSING_GENERATORS: &str = "/etc/systemd/system-generators";

#[test]
fn a_root_agent_can_read_but_not_change_the_files_the_daemon_trusts() {
    let fixture = Fixture::new();
    fs::create_dir_all("/etc/systemd/system").unwrap();
    fs::create_dir_all(GENERATORS).unwrap();
    fs::write(format!("{GENERATORS}/host-generator"), "#!/bin/sh\n").unwrap();
    let _ = fs::remove_dir_all(MISSING_GENERATORS);
    for file in ["/etc/resolv.conf", "/etc/hosts"] {
        if !Path::new(file).exists() {
            fs::write(file, "# test\n").unwrap();
        }
    }
    let _ = fs::remove_file("/etc/ld.so.preload");
    let daemon = Daemon::start(&fixture.config);
    // ops is matched by its executable and runs as root.
    let ops = |args: &[&str]| op_exe(&fixture.ops_exe, args);

    for file in ["/etc/resolv.conf", "/etc/hosts"] {
        assert_done(&ops(&["read", file]), &format!("reading {file}"));
        assert_refused(&ops(&["open-write", file]), &format!("writing {file}"));
        assert_refused(&ops(&["unlink", file]), &format!("deleting {file}"));
        assert_refused(
            &ops(&["rename", file, &format!("{file}.moved")]),
            &format!("moving {file}"),
        );
    }
    fs::write("/etc/agent-resolv.conf", "nameserver 127.0.0.9\n").unwrap();
    assert_refused(
        &ops(&["rename", "/etc/agent-resolv.conf", "/etc/resolv.conf"]),
        "replacing /etc/resolv.conf",
    );
    assert_refused(
        &ops(&["create", "/etc/ld.so.preload"]),
        "creating /etc/ld.so.preload",
    );
    assert_refused(
        &ops(&["symlink", "/etc/agent-resolv.conf", "/etc/ld.so.preload"]),
        "linking /etc/ld.so.preload",
    );
    // Drop-ins that would apply to kya-agent's unit, in any unit directory.
    for drop_in in [
        "/etc/systemd/system/service.d",
        "/etc/systemd/system/kya-.service.d",
        "/etc/systemd/system.control/kya-agent.service.d",
    ] {
        if Path::new(drop_in).parent().unwrap().exists() {
            assert_refused(&ops(&["mkdir", drop_in]), &format!("a drop-in {drop_in}"));
            assert!(!Path::new(drop_in).exists());
        }
    }
    // Generators: readable, nothing new, no change; a missing generator directory stays so.
    let generator = format!("{GENERATORS}/host-generator");
    assert_done(&ops(&["read", &generator]), "reading a generator");
    assert_refused(&ops(&["open-write", &generator]), "changing a generator");
    assert_refused(
        &ops(&["create", &format!("{GENERATORS}/agent-generator")]),
        "a new generator",
    );
    assert_refused(
        &ops(&["mkdir", MISSING_GENERATORS]),
        "a generator directory",
    );
    // The libraries kya-agent has mapped: readable, not writable nor movable.
    let maps = fs::read_to_string(format!("/proc/{}/maps", daemon.pid())).unwrap();
    let library = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.contains("/libc.so"))
        .expect("kya-agent maps libc")
        .to_owned();
    assert_done(&ops(&["read", &library]), "reading libc");
    assert_refused(&ops(&["open-write", &library]), "writing libc");
    let moved = ops(&["rename", &library, &format!("{library}.moved")]);
    if moved.is_ok() {
        fs::rename(format!("{library}.moved"), &library).unwrap();
    }
    assert_refused(&moved, "moving libc aside");
    assert!(eventually(Duration::from_secs(10), || {
        events()
            .iter()
            .any(|event| event["kind"] == "file-open" && event["path"] == "/etc/resolv.conf")
    }));
    // Untagged root keeps its host.
    assert_done(
        &op(None, &["open-write", "/etc/hosts"]),
        "root writing /etc/hosts",
    );
    assert_done(
        &op(None, &["create", &format!("{GENERATORS}/root-generator")]),
        "root adding a generator",
    );
    drop(daemon);
    let _ = fs::remove_file(format!("{GENERATORS}/root-generator"));
    let _ = fs::remove_file("/etc/agent-resolv.conf");
}
