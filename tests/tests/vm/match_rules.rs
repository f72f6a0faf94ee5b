//! Each match rule tags the processes it names, and nothing else.
use std::{os::unix::fs::symlink, time::Duration};

use kya_tests::{CODER_CGROUP, CODER_UID, Daemon, Fixture, Probe, bin, eventually, kya, scratch};

#[test]
fn exe_rule_matches_the_file_through_any_path_but_not_a_copy() {
    let fixture = Fixture::new();
    let dir = scratch("exe_rule");
    let hardlink = dir.join("hardlink-agent");
    let symlinked = dir.join("symlinked-agent");
    let copy = dir.join("copied-agent");
    std::fs::hard_link(&fixture.coder_exe, &hardlink).expect("hardlink");
    symlink(&fixture.coder_exe, &symlinked).expect("symlink");
    std::fs::copy(&fixture.coder_exe, &copy).expect("copy");
    let daemon = Daemon::start(&fixture.config);

    let direct = Probe::start(&fixture.coder_exe, &["self"]);
    let via_hardlink = Probe::start(&hardlink, &["self"]);
    let via_symlink = Probe::start(&symlinked, &["self"]);
    let via_relative_path = {
        let mut command = std::process::Command::new("./coder-agent");
        command
            .current_dir(fixture.coder_exe.parent().unwrap())
            .arg("self");
        Probe::spawn(command)
    };
    let same_bytes_other_file = Probe::start(&copy, &["self"]);
    let plain = Probe::plain(&["self"]);

    for probe in [&direct, &via_hardlink, &via_symlink, &via_relative_path] {
        let entry = daemon.assert_tagged(probe.pid(), "coder", "exe");
        assert_eq!(entry.origin, "matched");
    }
    daemon.assert_untagged(same_bytes_other_file.pid());
    daemon.assert_untagged(plain.pid());
}

#[test]
fn exe_rule_keeps_matching_after_the_file_is_renamed() {
    let fixture = Fixture::new();
    let dir = scratch("exe_renamed");
    let daemon = Daemon::start(&fixture.config);
    let moved = dir.join("renamed-agent");
    std::fs::rename(&fixture.coder_exe, &moved).expect("rename");
    let probe = Probe::start(&moved, &["self"]);
    let tagged = daemon.tagged(probe.pid());
    std::fs::rename(&moved, &fixture.coder_exe).expect("rename back");
    let entry = tagged.expect("the renamed executable is still the agent's file");
    assert_eq!(entry.matched_by, "exe");
}

#[test]
fn uid_rule_tags_a_process_that_switches_to_the_uid() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture.config);
    let agent_uid = Probe::plain(&["setuid", &CODER_UID.to_string()]);
    let other_uid = Probe::plain(&["setuid", "1000"]);
    daemon.assert_tagged(agent_uid.pid(), "coder", "uid");
    daemon.assert_untagged(other_uid.pid());
}

#[test]
fn uid_rule_tags_a_program_started_as_the_uid() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture.config);
    let probe = bin("kya-probe");
    let probe = probe.to_str().unwrap();
    // The intermediate switches uid (and is tagged then); the program it executes stays tagged.
    let started = Probe::plain(&["setuid-exec", &CODER_UID.to_string(), probe, "fork"]);
    for &pid in &started.pids {
        daemon.assert_tagged(pid, "coder", "uid");
    }
}

#[test]
fn cgroup_rule_tags_processes_moved_into_the_subtree() {
    let fixture = Fixture::new();
    let worker = format!("{CODER_CGROUP}/worker");
    std::fs::create_dir_all(kya_tests::cgroup_dir(&worker)).expect("nested cgroup");
    let daemon = Daemon::start(&fixture.config);

    let at_rule = Probe::plain(&["cgroup", CODER_CGROUP]);
    let below_rule = Probe::plain(&["cgroup", &worker]);
    let elsewhere = Probe::plain(&["cgroup", "/agents/other"]);
    daemon.assert_tagged(at_rule.pid(), "coder", "cgroup");
    daemon.assert_tagged(below_rule.pid(), "coder", "cgroup");
    daemon.assert_untagged(elsewhere.pid());
}

#[test]
fn cgroup_rule_tags_a_child_created_inside_the_subtree() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture.config);
    let inside = Probe::plain(&["clone-into-cgroup", CODER_CGROUP]);
    let elsewhere = Probe::plain(&["clone-into-cgroup", "/agents/other"]);
    daemon.assert_tagged(inside.pid(), "coder", "cgroup");
    daemon.assert_untagged(elsewhere.pid());
    // The untagged creator outside the subtree stays untagged.
    daemon.assert_untagged(inside.launcher_pid());
}

#[test]
fn kya_run_tags_the_command_as_the_named_agent() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture.config);
    let coder = Probe::as_agent("coder", &["self"]);
    let ops = Probe::as_agent("ops", &["self"]);
    let entry = daemon.assert_tagged(coder.pid(), "coder", "run");
    assert_eq!(entry.origin, "matched");
    assert_eq!(
        entry.exe.as_deref(),
        Some(bin("kya-probe").to_str().unwrap()),
        "kya run replaced itself with the command"
    );
    daemon.assert_tagged(ops.pid(), "ops", "run");
}

#[test]
fn kya_run_refuses_an_unknown_agent() {
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&fixture.config);
    let output = kya(&["run", "--agent", "nobody", "--", "/bin/true"]);
    assert!(
        !output.status.success(),
        "kya run with an unknown agent must fail"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown agent `nobody`") && stderr.contains("coder, ops"),
        "the error names the agent and the known ones: {stderr}"
    );
}

#[test]
fn untagged_processes_are_never_tagged() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture.config);
    let probes = [
        Probe::plain(&["fork"]),
        Probe::plain(&["thread"]),
        Probe::plain(&["double-fork"]),
        Probe::plain(&["daemonize"]),
        Probe::plain(&["namespaces"]),
        Probe::plain(&["setuid", "1000"]),
        Probe::plain(&["cgroup", "/agents/other"]),
    ];
    assert!(
        probes.iter().all(|probe| !probe.pids.is_empty()),
        "every probe reported its processes"
    );
    // Nothing on this machine matches a rule, so nothing at all may be tagged.
    assert!(
        eventually(Duration::from_millis(200), || daemon.ps().is_empty()),
        "no process should be tagged, but kya ps lists {:?}",
        daemon.ps()
    );
}
