//! Credential protection: an agent cannot reach the bytes of a protected file by any path or
//! descriptor, nor another process's memory or environment; untagged processes are unaffected.
use std::{fs, os::unix::fs::symlink, path::Path, process::Command, time::Duration};

use kya_tests::{
    Daemon, EPERM, Fixture, OpResult, Probe, events, eventually, op, op_with_fd, require_vm,
    scratch, serve_descriptor,
};

const ALICE_AWS: &str = "/home/alice/.aws/credentials";
const ALICE_AWS_CONFIG: &str = "/home/alice/.aws/config";
const ROOT_KUBE: &str = "/root/.kube/config";
const BOB_SSH_KEY: &str = "/home/bob/.ssh/id_ed25519";
const BOB_SSH_PUB: &str = "/home/bob/.ssh/id_ed25519.pub";
const GCLOUD_TOKEN: &str = "/home/alice/.config/gcloud/legacy/token.json";
const APP_DOTENV: &str = "/srv/app/.env.production";
const APP_SECRET: &str = "/srv/app/secrets/db.txt";
const APP_README: &str = "/srv/app/readme.txt";

/// Writes a file with some secret-looking content, creating its directory.
fn plant(path: &str) {
    let path = Path::new(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, format!("secret in {}\n", path.display())).unwrap();
}

fn plant_all() {
    for path in [
        ALICE_AWS,
        ALICE_AWS_CONFIG,
        ROOT_KUBE,
        BOB_SSH_KEY,
        BOB_SSH_PUB,
        GCLOUD_TOKEN,
        APP_DOTENV,
        APP_SECRET,
        APP_README,
    ] {
        plant(path);
    }
    // The VM's own shadow file (real entries, which the ghost agent tests' tools edit) stays.
    if !Path::new("/etc/shadow").exists() {
        plant("/etc/shadow");
    }
}

/// The test config, with coder's own file rules.
fn config_with_coder_files(fixture: &Fixture) -> String {
    // coder's [agents.files] must follow coder's table, before the ops agent.
    let (coder, ops) = fixture
        .config
        .split_once("[[agents]]\nname = \"ops\"")
        .expect("fixture has an ops agent");
    format!(
        "{coder}[agents.files]\nprotect = [\"/srv/app/secrets/\"]\nallow = [\"~/.aws/config\"]\n\n[[agents]]\nname = \"ops\"{ops}"
    )
}

/// A scratch directory on the same filesystem as the planted files, so links and renames
/// between them are possible (`/tmp` is a separate tmpfs in the VM).
fn same_fs_scratch(name: &str) -> std::path::PathBuf {
    let dir = Path::new("/srv/kya-scratch").join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn assert_denied(result: &OpResult, what: &str) {
    assert_eq!(result, &Err(EPERM), "{what} must be denied with EPERM");
}

fn assert_allowed(result: &OpResult, what: &str) {
    assert!(result.is_ok(), "{what} must succeed, got {result:?}");
}

#[test]
fn catalogue_files_are_denied_to_agents_and_open_to_everyone_else() {
    let fixture = Fixture::new();
    plant_all();
    let _daemon = Daemon::start(&config_with_coder_files(&fixture));
    for path in [
        ALICE_AWS,
        ROOT_KUBE,
        BOB_SSH_KEY,
        GCLOUD_TOKEN,
        APP_DOTENV,
        "/etc/shadow",
    ] {
        assert_denied(
            &op(Some("coder"), &["read", path]),
            &format!("coder reading {path}"),
        );
        assert_denied(
            &op(Some("ops"), &["read", path]),
            &format!("ops reading {path}"),
        );
        assert_allowed(
            &op(None, &["read", path]),
            &format!("untagged reading {path}"),
        );
    }
    assert_allowed(&op(Some("coder"), &["read", BOB_SSH_PUB]), "a public key");
    assert_allowed(
        &op(Some("coder"), &["read", APP_README]),
        "an ordinary file",
    );
}

#[test]
fn a_denial_reaches_the_daemon_with_agent_process_file_and_reason() {
    let fixture = Fixture::new();
    plant_all();
    let _daemon = Daemon::start(&config_with_coder_files(&fixture));
    assert_denied(
        &op(Some("coder"), &["read", ALICE_AWS]),
        "coder reading AWS credentials",
    );
    let metadata = fs::metadata(ALICE_AWS).unwrap();
    let found = eventually(Duration::from_secs(5), || {
        events().iter().any(|event| {
            event["kind"] == "file-open"
                && event["agent"] == "coder"
                && event["path"] == ALICE_AWS
                && event["ino"] == std::os::unix::fs::MetadataExt::ino(&metadata)
                && event["why"] == "catalogue (cloud CLIs): AWS access keys"
                && event["exe"]
                    .as_str()
                    .is_some_and(|exe| exe.ends_with("kya-probe"))
        })
    });
    assert!(found, "no matching event in {:#?}", events());
}

#[test]
fn per_agent_protect_and_allow_apply_to_that_agent_only() {
    let fixture = Fixture::new();
    plant_all();
    let _daemon = Daemon::start(&config_with_coder_files(&fixture));
    assert_allowed(
        &op(Some("coder"), &["read", ALICE_AWS_CONFIG]),
        "coder's allowed file",
    );
    assert_denied(
        &op(Some("ops"), &["read", ALICE_AWS_CONFIG]),
        "ops reading AWS config",
    );
    assert_denied(
        &op(Some("coder"), &["read", APP_SECRET]),
        "coder's own protected tree",
    );
    assert_allowed(
        &op(Some("ops"), &["read", APP_SECRET]),
        "ops reading coder's protect",
    );
}

#[test]
fn every_other_path_to_a_protected_file_is_denied() {
    let fixture = Fixture::new();
    plant_all();
    let dir = same_fs_scratch("other_paths");
    let hardlink = dir.join("innocent.txt");
    fs::hard_link(ALICE_AWS, &hardlink).unwrap();
    let symlinked = dir.join("link-to-credentials");
    symlink(ALICE_AWS, &symlinked).unwrap();
    let mount_point = dir.join("aws-bind");
    fs::create_dir_all(&mount_point).unwrap();
    let mounted = Command::new("mount")
        .args(["--bind", "/home/alice/.aws"])
        .arg(&mount_point)
        .status()
        .unwrap();
    assert!(mounted.success(), "bind mount for the test");
    let _daemon = Daemon::start(&config_with_coder_files(&fixture));

    let bind_path = mount_point.join("credentials");
    let via_self_root = format!("/proc/self/root{ALICE_AWS}");
    // Another process's root is another process: refused by the process rule (the kernel
    // reports it as EACCES).
    let via_proc_root = format!("/proc/1/root{ALICE_AWS}");
    assert_eq!(
        op(Some("coder"), &["read", &via_proc_root]),
        Err(EACCES),
        "{via_proc_root}"
    );
    assert_allowed(
        &op(None, &["read", &via_proc_root]),
        "untagged /proc/1/root",
    );
    for path in [
        hardlink.to_str().unwrap(),
        symlinked.to_str().unwrap(),
        bind_path.to_str().unwrap(),
        via_self_root.as_str(),
        "/home/alice/.aws/../.aws/./credentials",
    ] {
        assert_denied(&op(Some("coder"), &["read", path]), path);
        assert_allowed(&op(None, &["read", path]), &format!("untagged {path}"));
    }
    // A relative path from inside the directory.
    let relative = Command::new(kya_tests::bin("kya"))
        .current_dir("/home/alice/.aws")
        .args(["run", "--agent", "coder", "--"])
        .arg(kya_tests::bin("kya-probe"))
        .args(["read", "credentials"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&relative.stdout).contains("result errno 1"),
        "relative path: {relative:?}"
    );
    let _ = Command::new("umount").arg(&mount_point).status();
}

#[test]
fn protected_files_moved_replaced_or_created_later_stay_protected() {
    let fixture = Fixture::new();
    plant_all();
    let _ = fs::remove_dir_all("/home/alice/.azure");
    let dir = same_fs_scratch("changed_later");
    let _daemon = Daemon::start(&config_with_coder_files(&fixture));

    // Moved away by someone else: the object is still the credentials.
    let moved = dir.join("moved-credentials");
    fs::rename(ALICE_AWS, &moved).unwrap();
    assert_denied(
        &op(Some("coder"), &["read", moved.to_str().unwrap()]),
        "moved file",
    );
    // Replaced at its path (write a new file, rename it over): protected by path at once.
    let fresh = dir.join("fresh");
    fs::write(&fresh, "new secret").unwrap();
    fs::rename(&fresh, ALICE_AWS).unwrap();
    assert_denied(&op(Some("coder"), &["read", ALICE_AWS]), "replaced file");
    // Created later inside a protected tree, and as a dotenv file anywhere.
    plant("/home/alice/.config/gcloud/new-token.json");
    assert_denied(
        &op(
            Some("coder"),
            &["read", "/home/alice/.config/gcloud/new-token.json"],
        ),
        "file created in a protected tree",
    );
    plant("/srv/other/.env");
    assert_denied(
        &op(Some("coder"), &["read", "/srv/other/.env"]),
        "new dotenv file",
    );
    // A protected directory that did not exist when the daemon started.
    plant("/home/alice/.azure/accessTokens.json");
    assert!(
        eventually(Duration::from_secs(5), || op(
            Some("coder"),
            &["read", "/home/alice/.azure/accessTokens.json"]
        ) == Err(EPERM)),
        "a protected tree created after start is protected"
    );
    // And a hard link to the replaced file, made by someone else afterwards.
    let late_link = dir.join("late-link");
    fs::hard_link(ALICE_AWS, &late_link).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || op(
            Some("coder"),
            &["read", late_link.to_str().unwrap()]
        ) == Err(EPERM)),
        "a hard link to a file replaced after start is protected"
    );
}

#[test]
fn descriptors_from_before_tagging_or_from_elsewhere_cannot_read() {
    let fixture = Fixture::new();
    plant_all();
    let secret = || fs::File::open(ALICE_AWS).unwrap();
    // A helper outside the agent that hands out a descriptor, which coder may reach (its
    // `unix_allow`): the descriptor it receives must still not read.
    let socket = scratch("descriptors").join("fd.sock");
    let server = serve_descriptor(&socket, secret());
    let config = config_with_coder_files(&fixture).replacen(
        "\n\n[[agents]]\nname = \"ops\"",
        &format!(
            "\n[agents.network]\nunix_allow = [\"{}\"]\n\n[[agents]]\nname = \"ops\"",
            socket.display()
        ),
        1,
    );
    let _daemon = Daemon::start(&config);
    for scenario in [
        "read-fd",
        "mmap-fd",
        "sendfile-fd",
        "aio-read-fd",
        "uring-read-fd",
    ] {
        assert_denied(
            &op_with_fd(Some("coder"), &secret(), &[scenario, "3"]),
            &format!("{scenario} on a descriptor opened before tagging"),
        );
        assert_allowed(
            &op_with_fd(None, &secret(), &[scenario, "3"]),
            &format!("untagged {scenario}"),
        );
    }
    assert_denied(
        &op(Some("coder"), &["uring-open-read", ALICE_AWS]),
        "io_uring open",
    );

    assert_denied(
        &op(Some("coder"), &["recv-fd-read", socket.to_str().unwrap()]),
        "a descriptor received over a Unix socket",
    );
    server.join().unwrap();
}

#[test]
fn agents_cannot_link_or_move_protected_files() {
    let fixture = Fixture::new();
    plant_all();
    let dir = same_fs_scratch("link_move");
    let _daemon = Daemon::start(&config_with_coder_files(&fixture));
    let target = dir.join("copy");
    assert_denied(
        &op(
            Some("coder"),
            &["link", ALICE_AWS, target.to_str().unwrap()],
        ),
        "a new hard link",
    );
    assert_denied(
        &op(
            Some("coder"),
            &["rename", ALICE_AWS, target.to_str().unwrap()],
        ),
        "moving the file out",
    );
    assert!(
        Path::new(ALICE_AWS).exists(),
        "the file stayed where it was"
    );
    let readme_link = dir.join("readme-link");
    assert_allowed(
        &op(
            Some("coder"),
            &["link", APP_README, readme_link.to_str().unwrap()],
        ),
        "linking an ordinary file",
    );
}

#[test]
fn agents_cannot_read_other_processes() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture.config);
    let victim = Probe::plain(&["self"]);
    let victim_pid = victim.pid().to_string();
    let sibling = Probe::as_agent("coder", &["self"]);
    let sibling_pid = sibling.pid().to_string();
    let other_agent = Probe::as_agent("ops", &["self"]);
    let other_agent_pid = other_agent.pid().to_string();
    // The kernel reports a refused /proc open as EACCES and maps it to EPERM for
    // process_vm_readv; ptrace returns the hook's EPERM. The untagged control below, run by the
    // same user, proves the refusal is kya's.
    for (scenario, errno) in [
        ("environ", EACCES),
        ("mem", EACCES),
        ("vm-readv", EPERM),
        ("ptrace", EPERM),
    ] {
        assert_eq!(
            op(Some("coder"), &[scenario, &victim_pid]),
            Err(errno),
            "{scenario} of an untagged process must be refused"
        );
        assert_eq!(
            op(Some("coder"), &[scenario, &other_agent_pid]),
            Err(errno),
            "{scenario} of another agent's process must be refused"
        );
        assert_allowed(
            &op(None, &[scenario, &victim_pid]),
            &format!("untagged {scenario} of an untagged process"),
        );
        assert_allowed(
            &op(Some("coder"), &[scenario, &sibling_pid]),
            &format!("{scenario} of the same agent's process"),
        );
        assert_allowed(
            &op(None, &[scenario, &sibling_pid]),
            &format!("untagged {scenario} of an agent"),
        );
    }
    daemon.assert_tagged(sibling.pid(), "coder", "run");
    let refused = events()
        .iter()
        .filter(|event| event["kind"] == "procfs" && event["agent"] == "coder")
        .count();
    assert!(refused >= 8, "every refusal is an event: {:#?}", events());
}

/// `EACCES`, what the kernel turns a refused `/proc/PID/{environ,mem}` open into.
const EACCES: i32 = 13;

#[test]
fn agents_read_ordinary_trees_without_a_single_denial() {
    require_vm();
    let fixture = Fixture::new();
    plant_all();
    let _daemon = Daemon::start(&config_with_coder_files(&fixture));
    for tree in ["/kya/workspace", "/usr", "/lib", "/bin", "/kya"] {
        assert!(Path::new(tree).is_dir(), "{tree} exists in the test VM");
        assert_allowed(
            &op(Some("coder"), &["walk", tree]),
            &format!("walking {tree}"),
        );
    }
    assert!(
        events().is_empty(),
        "no denial while walking ordinary files: {:#?}",
        events()
    );
}

/// A pipe's file is its own parent, like a file reached by handle without a path, but it is
/// not disconnected: an agent reopening its standard input through `/proc/self/fd` (what
/// `cat /dev/stdin` does) reads it.
#[test]
fn an_agent_reopens_its_pipe_through_proc_self_fd() {
    use std::{io::Write as _, process::Stdio};
    require_vm();
    let fixture = Fixture::new();
    let _daemon = Daemon::start(&config_with_coder_files(&fixture));
    let mut agent = Command::new(kya_tests::bin("kya"))
        .args(["run", "--agent", "coder", "--"])
        .arg(kya_tests::bin("kya-probe"))
        .args(["read", "/proc/self/fd/0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the agent");
    agent
        .stdin
        .take()
        .expect("a pipe")
        .write_all(b"hello\n")
        .expect("write to the agent's pipe");
    let output = agent.wait_with_output().expect("the agent ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("result ok 6 bytes"),
        "reopening a pipe must succeed: {stdout}"
    );
    assert!(events().is_empty(), "no denial: {:#?}", events());
}

/// Directories between a file and its filesystem's root that the kernel walks (the root
/// included), as `MAX_WALK_DEPTH` in kya-common: a file below 39 of them (root included) is
/// checked, one below 40 is refused because its protection is unknown.
const WALK_LEVELS: usize = 39;

/// A tmpfs of its own at `dir`, so the depth of a file below its root is known exactly;
/// unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: std::path::PathBuf) -> Self {
        fs::create_dir_all(&dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "tmpfs"])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount a tmpfs at {}", dir.display());
        Self(dir)
    }

    /// Plants a file below `dirs` directories (the first named `top`, the rest `d`) under the
    /// root, so the root is `dirs + 1` levels above the file.
    fn plant_below(&self, top: &str, dirs: usize) -> String {
        let mut path = self.0.join(top);
        for _ in 1..dirs {
            path.push("d");
        }
        fs::create_dir_all(&path).unwrap();
        let file = path.join("file.txt");
        fs::write(&file, "deep\n").unwrap();
        file.display().to_string()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The walk up the directories ends at its depth limit, never with an answer it did not check:
/// a file whose filesystem root is within the walk is read, one deeper is refused (fail
/// closed, `TooDeep`), and a protected tree as far up as the walk goes still protects.
#[test]
fn files_deeper_than_the_walk_are_refused_and_trees_up_to_it_protect() {
    require_vm();
    let fixture = Fixture::new();
    let tmpfs = Tmpfs::mount(scratch("too_deep").join("fs"));
    // The root is the last level the walk checks.
    let within = tmpfs.plant_below("open", WALK_LEVELS - 1);
    // The root is one level beyond it.
    let beyond = tmpfs.plant_below("deep", WALK_LEVELS);
    // The tree's top is the last directory below the root: WALK_LEVELS - 1 levels above.
    let secret = tmpfs.plant_below("secret", WALK_LEVELS - 1);
    let (coder, ops) = fixture
        .config
        .split_once("[[agents]]\nname = \"ops\"")
        .expect("fixture has an ops agent");
    let config = format!(
        "{coder}[agents.files]\nprotect = [\"{}/secret/\"]\n\n[[agents]]\nname = \"ops\"{ops}",
        tmpfs.0.display()
    );
    let _daemon = Daemon::start(&config);
    assert_allowed(
        &op(Some("coder"), &["read", &within]),
        "a file within the walk",
    );
    assert!(events().is_empty(), "no denial: {:#?}", events());
    assert_denied(
        &op(Some("coder"), &["read", &beyond]),
        "a file beyond the walk",
    );
    assert_allowed(
        &op(None, &["read", &beyond]),
        "untagged reading a deep file",
    );
    let found = eventually(Duration::from_secs(5), || {
        events().iter().any(|event| {
            event["kind"] == "file-open"
                && event["agent"] == "coder"
                && event["why"]
                    .as_str()
                    .is_some_and(|why| why.starts_with("deeper below its filesystem root"))
        })
    });
    assert!(found, "no too-deep event in {:#?}", events());
    assert_denied(
        &op(Some("coder"), &["read", &secret]),
        "a file in a protected tree whose top is the walk's last directory",
    );
    assert_allowed(
        &op(Some("ops"), &["read", &secret]),
        "another agent reading coder's protected tree",
    );
}
