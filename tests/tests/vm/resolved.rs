//! What a human approves is what they see: requests and grants name the object the kernel
//! decides about (the file a symlink or another name leads to, the addresses a host name
//! resolves to), and `kya grant --file` refuses a name that is not the object's own.
use std::{fs, os::unix::fs::MetadataExt as _, path::Path, process::Command};

use kya_tests::{Daemon, EPERM, Fixture, kya, kya_as, op_exe};

use crate::{
    egress::{tcp_listener, write_name_service},
    grants::{ALICE, SECRET, grants, ok, pending, pending_id, plant, refused},
};

/// A second protected file (catalogue: netrc), of another length than `SECRET`'s 7 bytes.
const NETRC: &str = "/home/alice/.netrc";
const WORK: &str = "/home/alice/work";

/// A fresh `WORK` directory, and `NETRC`.
fn plant_all() {
    plant();
    fs::write(NETRC, "machine example\n").unwrap();
    let _ = fs::remove_dir_all(WORK);
    fs::create_dir_all(WORK).unwrap();
}

fn inode(path: &str) -> String {
    format!("inode {}", fs::metadata(path).unwrap().ino())
}

/// The one pending file request, checked to name `SECRET` (its path and inode) and, if
/// `opened_as` is given, the name the agent opened it by.
fn secret_request(opened_as: Option<&str>) -> String {
    let id = pending_id("file");
    let listed = pending();
    let request = listed
        .iter()
        .find(|request| request["id"] == id.as_str())
        .unwrap();
    let resource = request["resource"].as_str().unwrap();
    assert!(
        resource.starts_with(&format!("file {SECRET}")),
        "the request names the protected object: {resource}"
    );
    assert!(resource.contains(&inode(SECRET)), "{resource}");
    match opened_as {
        Some(name) => assert!(
            resource.contains(&format!("(opened as `{name}`, another name of it)")),
            "{resource}"
        ),
        None => assert!(!resource.contains("opened as"), "{resource}"),
    }
    id
}

/// Approves `id` once as alice and checks that the agent then reads `SECRET` through `path`
/// exactly once, and that the grant covers nothing else.
fn approve_once_and_read_once(fixture: &Fixture, id: &str, path: &str) {
    ok(
        &kya_as(ALICE, &["approve", id, "--once"]),
        "alice approves once",
    );
    let listed = grants();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let resource = listed[0]["resource"].as_str().unwrap();
    assert!(
        resource.starts_with(&format!("file {SECRET}")) && resource.contains(&inode(SECRET)),
        "the grant shows the object it covers: {resource}"
    );
    assert_eq!(
        op_exe(&fixture.coder_exe, &["read", NETRC]),
        Err(EPERM),
        "the grant covers only the object shown"
    );
    assert_eq!(
        op_exe(&fixture.coder_exe, &["read", path]),
        Ok("7 bytes".to_owned()),
        "the approved read of {path} opens {SECRET}"
    );
    assert_eq!(
        op_exe(&fixture.coder_exe, &["read", path]),
        Err(EPERM),
        "the single use is spent"
    );
}

#[test]
fn a_symlink_the_agent_made_is_requested_and_granted_as_the_file_it_leads_to() {
    let fixture = Fixture::new();
    plant_all();
    let _daemon = Daemon::start_clean(&fixture.config_with_alice_approving());
    let link = format!("{WORK}/notes");
    assert!(
        op_exe(&fixture.coder_exe, &["symlink", SECRET, &link]).is_ok(),
        "an agent may make a symlink"
    );
    assert_eq!(op_exe(&fixture.coder_exe, &["read", &link]), Err(EPERM));
    let id = secret_request(None);
    approve_once_and_read_once(&fixture, &id, &link);
}

#[test]
fn a_hard_link_made_before_is_requested_and_granted_as_the_protected_file() {
    let fixture = Fixture::new();
    plant_all();
    // Made by root, not by the agent (agents may not link protected files).
    let link = format!("{WORK}/notes");
    fs::hard_link(SECRET, &link).unwrap();
    let _daemon = Daemon::start_clean(&fixture.config_with_alice_approving());
    assert_eq!(op_exe(&fixture.coder_exe, &["read", &link]), Err(EPERM));
    let id = secret_request(Some("notes"));
    let events = kya(&["events"]);
    let events = ok(&events, "kya events");
    assert!(
        events.contains(&format!("{SECRET} (opened as `notes`, another name of it)")),
        "{events}"
    );
    approve_once_and_read_once(&fixture, &id, &link);
}

#[test]
fn kya_grant_file_refuses_a_name_that_is_not_the_objects_own_and_names_both() {
    let fixture = Fixture::new();
    plant_all();
    let symlink = format!("{WORK}/notes");
    std::os::unix::fs::symlink(SECRET, &symlink).unwrap();
    let hard_link = format!("{WORK}/copy");
    fs::hard_link(SECRET, &hard_link).unwrap();
    let dotdot = format!("{WORK}/../.aws/credentials");
    let bind = kya_tests::scratch("resolved_bind");
    let mounted = Command::new("mount")
        .args(["--bind", "/home/alice/.aws"])
        .arg(&bind)
        .status()
        .unwrap();
    assert!(mounted.success(), "bind mount");
    let through_bind = bind.join("credentials").display().to_string();
    let _daemon = Daemon::start_clean(&fixture.config_with_alice_approving());

    let grant = |path: &str| kya(&["grant", "--agent", "coder", "--file", path, "--once"]);
    for (typed, how) in [
        (symlink.as_str(), "through a symlink or `..`"),
        (dotdot.as_str(), "through a symlink or `..`"),
        (hard_link.as_str(), "another name (a hard link"),
        (through_bind.as_str(), "another name (a hard link"),
    ] {
        let answer = grant(typed);
        refused(&answer, typed, how);
        let message = String::from_utf8_lossy(&answer.stderr);
        assert!(
            message.contains(&format!("`{typed}`")),
            "names what was typed: {message}"
        );
        assert!(
            message.contains(&format!("kya grant --agent coder --file {SECRET}")),
            "says how to grant the real object: {message}"
        );
    }
    assert!(grants().is_empty(), "nothing was granted");

    // Named by its own path, the object is granted, and then under every name.
    ok(&grant(SECRET), "kya grant --file by the real path");
    let listed = grants();
    assert!(
        listed[0]["resource"]
            .as_str()
            .unwrap()
            .starts_with(&format!("file {SECRET} [")),
        "{listed:?}"
    );
    assert_eq!(
        op_exe(&fixture.coder_exe, &["read", &hard_link]),
        Ok("7 bytes".to_owned())
    );
    let unmounted = Command::new("umount").arg(&bind).status().unwrap();
    assert!(unmounted.success(), "umount");
    assert!(Path::new(SECRET).exists());
}

#[test]
fn a_host_name_grant_shows_the_addresses_the_kernel_lets_through() {
    let fixture = Fixture::new();
    write_name_service();
    let _daemon = Daemon::start_clean(&fixture.config_with_alice_approving());
    let _listeners = [
        tcp_listener("127.0.0.5:5432"),
        tcp_listener("127.0.0.6:5432"),
    ];
    let out = ok(
        &kya(&[
            "grant",
            "--agent",
            "coder",
            "--connect",
            "db.internal:5432",
            "--for",
            "1m",
        ]),
        "kya grant --connect by host name",
    );
    assert!(
        out.contains("connect db.internal:5432 (127.0.0.5:5432)"),
        "the grant names the host and the address it resolved to: {out}"
    );
    let listed = grants();
    assert_eq!(
        listed[0]["resource"], "connect db.internal:5432 (127.0.0.5:5432)",
        "{listed:?}"
    );
    assert!(
        op_exe(&fixture.coder_exe, &["tcp-connect", "127.0.0.5", "5432"]).is_ok(),
        "the address shown is let through"
    );
    assert_eq!(
        op_exe(&fixture.coder_exe, &["tcp-connect", "127.0.0.6", "5432"]),
        Err(EPERM),
        "no other address is"
    );
}
