//! Identity rules on the filesystems hosts run: btrfs, XFS, ext4 (on loop devices) and
//! overlayfs (a container's root). On each, a protected file is refused to an agent (by its
//! path and, through a hard link at an unprotected path, by its identity alone) and readable to
//! everyone else, a file inside a protected tree is refused, and a process started from an
//! executable named in an `exe` rule is tagged (and one already running is adopted when the
//! rule is put in force). The kernel compares the superblock's device,
//! which is not what `stat()` reports on btrfs (a subvolume's device) nor, for files, on an
//! overlay whose layers are on different filesystems (a per-layer device). On ext4, a file
//! reached by its handle once its dentry has left the cache is refused to agents.
//!
//! Each filesystem is made and mounted by the first test that needs it, with the kernel modules
//! it needs, so no other test pays for them.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::Once,
    time::Duration,
};

use kya_tests::{Daemon, EPERM, OpResult, Probe, bin, events, eventually, op, require_vm};

/// Where the filesystems are mounted, one directory each.
const MOUNT_ROOT: &str = "/mnt/kya-fs";
/// Where their images and the overlay's layers live (the guest's tmpfs: images are sparse).
const IMAGE_DIR: &str = "/tmp/kya-fs";
/// The mkfs tools the test image carries (`xtask/src/test.rs`).
const MKFS_BTRFS: &str = "/usr/local/sbin/mkfs.btrfs";
const MKFS_XFS: &str = "/usr/local/sbin/mkfs.xfs";
const MKE2FS: &str = "/usr/local/sbin/mke2fs";

#[derive(Clone, Copy, Debug)]
enum Filesystem {
    Btrfs,
    Ext4,
    Xfs,
    Overlay,
}

impl Filesystem {
    fn name(self) -> &'static str {
        match self {
            Self::Btrfs => "btrfs",
            Self::Ext4 => "ext4",
            Self::Xfs => "xfs",
            Self::Overlay => "overlay",
        }
    }
}

/// Runs a shell command in the guest; panics with its output unless it succeeds.
fn sh(script: &str) {
    let output = Command::new("sh")
        .args(["-c", script])
        .output()
        .expect("run sh");
    assert!(
        output.status.success(),
        "`{script}` failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Loads loop, btrfs, XFS and overlayfs (and what they depend on) from the modules the test
/// image carries for this kernel, once.
fn load_modules() {
    static LOADED: Once = Once::new();
    LOADED.call_once(|| {
        let release = fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
        let dir = Path::new("/lib/modules").join(release.trim());
        let order = fs::read_to_string(dir.join("load-order")).unwrap_or_else(|error| {
            panic!(
                "the test image has no modules for this kernel in {} ({error})",
                dir.display()
            )
        });
        for name in order.lines().filter(|name| !name.is_empty()) {
            if !Path::new("/sys/module").join(name).exists() {
                sh(&format!(
                    "insmod {}",
                    dir.join(format!("{name}.ko")).display()
                ));
            }
        }
    });
}

/// Makes a sparse image of `size` bytes for `fs`.
fn image(fs: Filesystem, size: u64) -> PathBuf {
    fs::create_dir_all(IMAGE_DIR).unwrap();
    let path = Path::new(IMAGE_DIR).join(format!("{}.img", fs.name()));
    let file = fs::File::create(&path).expect("create image");
    file.set_len(size).expect("size image");
    path
}

/// The mounted filesystem `fs`, made, mounted and filled with the test's files on first use:
/// `secret.txt`, its hard link `links/secret-link`, `tree/sub/token.txt`, `plain.txt` and
/// `bin/agent` (a copy of `kya-probe`), then, written through the mount, `written.txt` and its
/// hard link `links/written-link`.
fn mounted(fs: Filesystem) -> PathBuf {
    require_vm();
    let root = Path::new(MOUNT_ROOT).join(fs.name());
    let ready = root.join("links/written-link");
    if ready.exists() {
        return root;
    }
    load_modules();
    fs::create_dir_all(&root).unwrap();
    let target = root.display();
    match fs {
        Filesystem::Btrfs => {
            // Its minimum size with the default profiles.
            let image = image(fs, 128 << 20);
            sh(&format!("{MKFS_BTRFS} -q {}", image.display()));
            sh(&format!(
                "mount -t btrfs -o loop {} {target}",
                image.display()
            ));
            fill(&root);
        }
        Filesystem::Ext4 => {
            let image = image(fs, 32 << 20);
            sh(&format!("{MKE2FS} -q -F -t ext4 {}", image.display()));
            sh(&format!(
                "mount -t ext4 -o loop {} {target}",
                image.display()
            ));
            fill(&root);
        }
        Filesystem::Xfs => {
            // mkfs.xfs refuses less than 300 MiB.
            let image = image(fs, 320 << 20);
            sh(&format!("{MKFS_XFS} -q {}", image.display()));
            sh(&format!(
                "mount -t xfs -o loop {} {target}",
                image.display()
            ));
            fill(&root);
        }
        Filesystem::Overlay => {
            // The lower layer on the guest's /tmp, the upper one on a tmpfs of its own: layers
            // on different filesystems, as a container's image and its writable layer often
            // are. The files are in the lower layer, like an image's.
            let layers = Path::new(IMAGE_DIR).join("overlay");
            let lower = layers.join("lower");
            let rw = layers.join("rw");
            fs::create_dir_all(&lower).unwrap();
            fs::create_dir_all(&rw).unwrap();
            fill(&lower);
            sh(&format!("mount -t tmpfs tmpfs {}", rw.display()));
            sh(&format!(
                "mkdir {rw}/upper {rw}/work && mount -t overlay overlay \
                 -o lowerdir={lower},upperdir={rw}/upper,workdir={rw}/work {target}",
                rw = rw.display(),
                lower = lower.display()
            ));
        }
    }
    // On the overlay, in the upper layer only: a file the container wrote.
    fs::write(root.join("written.txt"), "written\n").unwrap();
    fs::hard_link(root.join("written.txt"), &ready).unwrap();
    root
}

fn fill(root: &Path) {
    for dir in ["links", "tree/sub", "bin"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    fs::write(root.join("secret.txt"), "secret\n").unwrap();
    fs::hard_link(root.join("secret.txt"), root.join("links/secret-link")).unwrap();
    fs::write(root.join("tree/sub/token.txt"), "token\n").unwrap();
    fs::copy(bin("kya-probe"), root.join("bin/agent")).unwrap();
    // Last: its presence says the filesystem is ready.
    fs::write(root.join("plain.txt"), "plain\n").unwrap();
}

fn config(root: &Path) -> String {
    let root = root.display();
    format!(
        r#"
[[agents]]
name = "coder"
owner = "alice"
[agents.match]
exe = ["{root}/bin/agent"]
[agents.files]
protect = ["{root}/secret.txt", "{root}/written.txt", "{root}/tree/"]
"#
    )
}

/// What an agent and an untagged process saw on one filesystem.
#[derive(Debug, PartialEq)]
struct Seen {
    agent_reads_secret: OpResult,
    agent_reads_hard_link: OpResult,
    agent_reads_written_hard_link: OpResult,
    agent_reads_tree_file: OpResult,
    agent_reads_plain_file_ok: bool,
    untagged_reads_secret_ok: bool,
    /// The agent a process started from `bin/agent` was tagged as, and by what.
    exe_tagged_as: Option<(String, String)>,
    /// The agent a process started from `bin/agent` before the config was in force was
    /// tagged as, and how (found in `/proc` when the config was put in force).
    running_exe_tagged_as: Option<(String, String)>,
    denial_reported: bool,
}

fn check(fs: Filesystem) {
    let root = mounted(fs);
    let running = Probe::start(root.join("bin/agent"), &["self"]);
    let daemon = Daemon::start(&config(&root));
    let secret = root.join("secret.txt");
    let read = |agent, path: &Path| op(agent, &["read", path.to_str().unwrap()]);
    let agent_reads_secret = read(Some("coder"), &secret);
    let denial_reported = agent_reads_secret == Err(EPERM)
        && eventually(Duration::from_secs(5), || {
            events().iter().any(|event| {
                event["kind"] == "file-open"
                    && event["agent"] == "coder"
                    && event["path"] == secret.to_str().unwrap()
            })
        });
    let probe = Probe::start(root.join("bin/agent"), &["self"]);
    let seen = Seen {
        agent_reads_secret,
        agent_reads_hard_link: read(Some("coder"), &root.join("links/secret-link")),
        agent_reads_written_hard_link: read(Some("coder"), &root.join("links/written-link")),
        agent_reads_tree_file: read(Some("coder"), &root.join("tree/sub/token.txt")),
        agent_reads_plain_file_ok: read(Some("coder"), &root.join("plain.txt")).is_ok(),
        untagged_reads_secret_ok: read(None, &secret).is_ok(),
        exe_tagged_as: daemon
            .tagged(probe.pid())
            .map(|entry| (entry.agent, entry.matched_by)),
        running_exe_tagged_as: daemon
            .tagged(running.pid())
            .map(|entry| (entry.agent, entry.origin)),
        denial_reported,
    };
    let expected = Seen {
        agent_reads_secret: Err(EPERM),
        agent_reads_hard_link: Err(EPERM),
        agent_reads_written_hard_link: Err(EPERM),
        agent_reads_tree_file: Err(EPERM),
        agent_reads_plain_file_ok: true,
        untagged_reads_secret_ok: true,
        exe_tagged_as: Some(("coder".to_owned(), "exe".to_owned())),
        running_exe_tagged_as: Some(("coder".to_owned(), "adopted".to_owned())),
        denial_reported: true,
    };
    assert_eq!(seen, expected, "on {} at {}", fs.name(), root.display());
}

/// Without the fix (identities from `stat()`), on 6.1 and 6.12: the agent read the protected
/// file, its hard link (and the written one's, checked on 6.12) and the file in the protected
/// tree, no denial was reported, and the process started from `bin/agent` was not tagged (one
/// already running was adopted: `/proc` and the rule were both read with `stat()`, so they
/// agreed with each other, not with the kernel).
#[test]
fn btrfs_files_trees_and_executables_are_recognised() {
    check(Filesystem::Btrfs);
}

/// The control: `stat()` reports the superblock's device on ext4, so this passed without the
/// fix too (6.1 and 6.12).
#[test]
fn ext4_files_trees_and_executables_are_recognised() {
    check(Filesystem::Ext4);
}

/// Without the fix, on 6.1 and 6.12: the agent read the protected file through its hard link
/// (and, on 6.12, the one written in the upper layer through its hard link too); the file by
/// its own path and the tree were refused (directories report the overlay's device, so rules
/// by path and trees matched), and the process started from `bin/agent` was not tagged (one
/// already running was adopted, as on btrfs).
#[test]
fn overlay_files_trees_and_executables_are_recognised() {
    check(Filesystem::Overlay);
}

/// Like ext4, XFS's `st_dev` is the superblock's: this passed without the fix too (6.1 and
/// 6.12).
#[test]
fn xfs_files_trees_and_executables_are_recognised() {
    check(Filesystem::Xfs);
}

/// Without a mount table (here `/proc` is an empty tmpfs in a mount namespace of its own) the
/// device the kernel sees is unknown: `check-config` names each path it could not identify and
/// why, and the `exe` rule that matches nothing. Without the fix (6.12): `check-config` listed
/// the files as protected and the `exe` rule as matching, and said nothing of the mount table.
#[test]
fn check_config_names_the_paths_whose_identity_cannot_be_established() {
    let root = mounted(Filesystem::Ext4);
    let dir = kya_tests::scratch("check_config_identity");
    let path = dir.join("kya.toml");
    fs::write(&path, config(&root)).unwrap();
    let output = Command::new("unshare")
        .args(["-m", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs tmpfs /proc && exec {} check-config {}",
            bin("kya-agent").display(),
            path.display()
        ))
        .output()
        .expect("run kya-agent check-config in a mount namespace");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let secret = format!(
        "  {}: cannot read /proc/self/mountinfo",
        root.join("secret.txt").display()
    );
    let exe = format!(
        "coder exe {} -> matches nothing: the identity the kernel sees cannot be established",
        root.join("bin/agent").display()
    );
    for expected in [
        "protected paths whose identity, as the kernel sees it, cannot be established",
        &secret,
        &exe,
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
}

/// Makes the kernel forget every unused dentry and inode, as memory pressure would.
fn drop_caches() {
    nix::unistd::sync();
    fs::write("/proc/sys/vm/drop_caches", "2").expect("drop the dentry and inode caches");
}

/// A root agent that has a file's handle opens it with `open_by_handle_at`. Once the kernel
/// has dropped the file's dentry, the handle brings it back disconnected: its own parent, with
/// no name or directory known, so no dotenv, ssh-key, path or tree rule can apply. Such a
/// file is refused to agents, protected or not; an untagged process still opens it.
///
/// Without the fix: the agent read the dotenv file (seen on 6.1 and 6.12).
#[test]
fn a_file_reached_by_handle_without_a_path_is_refused_to_agents() {
    let root = mounted(Filesystem::Ext4);
    let _daemon = Daemon::start(&config(&root));
    let project = root.join("handle-project");
    fs::create_dir_all(&project).unwrap();
    let dotenv = project.join(".env");
    fs::write(&dotenv, "TOKEN=secret\n").unwrap();
    let mount = root.to_str().unwrap();
    let handle = op(None, &["handle-of", dotenv.to_str().unwrap()]).expect("a handle");
    let open_as_agent = || op(Some("coder"), &["open-by-handle", mount, &handle]);
    // Warm: the dentry is cached and connected, and the name rule refuses it.
    assert_eq!(
        open_as_agent(),
        Err(EPERM),
        "a cached dotenv file by handle"
    );
    drop_caches();
    assert_eq!(
        open_as_agent(),
        Err(EPERM),
        "a dotenv file by handle after the dentry cache was dropped"
    );
    assert!(
        eventually(Duration::from_secs(10), || events().iter().any(|event| {
            event["agent"] == "coder"
                && event["why"]
                    .as_str()
                    .is_some_and(|why| why.contains("file handle without a path"))
        })),
        "the refusal is reported with its reason: {:#?}",
        events()
    );
    drop_caches();
    assert_eq!(
        op(None, &["open-by-handle", mount, &handle]),
        Ok("13 bytes".to_owned()),
        "an untagged process opens the handle"
    );
}
