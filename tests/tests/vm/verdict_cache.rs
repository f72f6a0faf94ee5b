//! The file hooks remember "nothing protects this" (see `kya_common::verdict`): every way such
//! a verdict could go stale is tried here on a file an agent has read (so the verdict is
//! remembered), and the next read and mapping through a descriptor must be refused: a reload
//! protects it, it or its directory moves into a protected tree, the watcher registers it as a
//! new protected object, and a grant that let it through ends or is spent. A mount over its
//! directory changes no verdict on the file itself (the check goes up the file's own dentries,
//! never across a mount): the descriptor reads as before, while the path now reaches the
//! protected tree and is refused. The files next to them stay readable throughout.
use std::{
    fs::{self, File},
    path::Path,
    process::Command,
    time::Duration,
};

use kya_tests::{Daemon, EPERM, Fixture, OpResult, eventually, kya, op_exe, op_exe_with_fd};
use nix::sys::signal::Signal;

const ROOT: &str = "/srv/verdicts";
/// Protected from coder from the start.
const PROTECTED: &str = "/srv/verdicts/protected";
const SECRET: &str = "/srv/verdicts/protected/secret.txt";
/// Nothing protects it; read after every change, it must stay readable.
const NEIGHBOUR: &str = "/srv/verdicts/open/neighbour.txt";

/// The fixture's config with alice approving coder's grants and coder's files protected as
/// `protect` says.
fn config(fixture: &Fixture, protect: &[&str]) -> String {
    let (coder, ops) = fixture.split_at_ops_with_alice_approving();
    let list: Vec<String> = protect.iter().map(|path| format!("\"{path}\"")).collect();
    format!(
        "{coder}[agents.files]\nprotect = [{}]\n\n[[agents]]\nname = \"ops\"{ops}",
        list.join(", ")
    )
}

fn plant(path: &str) {
    fs::create_dir_all(Path::new(path).parent().unwrap()).unwrap();
    fs::write(path, "contents\n").unwrap();
}

/// A fresh tree: the protected directory with its secret and the neighbour.
fn plant_tree() {
    let _ = fs::remove_dir_all(ROOT);
    plant(SECRET);
    plant(NEIGHBOUR);
}

fn read_fd(fixture: &Fixture, file: &File) -> OpResult {
    op_exe_with_fd(&fixture.coder_exe, file, &["read-fd", "3"])
}

fn mmap_fd(fixture: &Fixture, file: &File) -> OpResult {
    op_exe_with_fd(&fixture.coder_exe, file, &["mmap-fd", "3"])
}

fn read_path(fixture: &Fixture, path: &str) -> OpResult {
    op_exe(&fixture.coder_exe, &["read", path])
}

/// coder opens, reads and maps `path`, and reads and maps `file` (the test's descriptor of
/// it): every one allowed, so each hook has remembered its verdict.
fn remembered(fixture: &Fixture, path: &str, file: &File) {
    for _ in 0..2 {
        assert!(read_path(fixture, path).is_ok(), "coder reads {path}");
        let read = read_fd(fixture, file);
        assert!(read.is_ok(), "coder reads {path} by descriptor: {read:?}");
        let mapped = mmap_fd(fixture, file);
        assert!(mapped.is_ok(), "coder maps {path}: {mapped:?}");
    }
}

/// Reads and mappings of `file` (`what`) are refused; the neighbour stays readable.
fn refused(fixture: &Fixture, file: &File, what: &str) {
    assert_eq!(read_fd(fixture, file), Err(EPERM), "read of {what}");
    assert_eq!(mmap_fd(fixture, file), Err(EPERM), "mapping of {what}");
    neighbour_readable(fixture);
}

fn neighbour_readable(fixture: &Fixture) {
    let neighbour = File::open(NEIGHBOUR).unwrap();
    assert!(
        read_path(fixture, NEIGHBOUR).is_ok(),
        "the neighbour by path"
    );
    assert!(
        read_fd(fixture, &neighbour).is_ok(),
        "the neighbour by descriptor"
    );
    assert!(mmap_fd(fixture, &neighbour).is_ok(), "the neighbour mapped");
}

#[test]
fn a_reload_that_protects_a_remembered_file_refuses_its_next_read() {
    let fixture = Fixture::new();
    plant_tree();
    let file_path = "/srv/verdicts/reloaded/file.txt";
    plant(file_path);
    let _daemon = Daemon::start(&config(&fixture, &[&format!("{PROTECTED}/")]));
    let file = File::open(file_path).unwrap();
    remembered(&fixture, file_path, &file);

    let _daemon = Daemon::start(&config(
        &fixture,
        &[&format!("{PROTECTED}/"), "/srv/verdicts/reloaded/"],
    ));
    refused(&fixture, &file, "a file a reload protected");
    assert_eq!(read_path(&fixture, file_path), Err(EPERM));
}

/// With the daemon stopped, nothing but the kernel's own record of the move can tell the hooks
/// that their verdict went stale.
#[test]
fn a_remembered_file_moved_into_a_protected_tree_is_refused() {
    let fixture = Fixture::new();
    plant_tree();
    let daemon = Daemon::start(&config(&fixture, &[&format!("{PROTECTED}/")]));
    let moved = "/srv/verdicts/open/moved.txt";
    plant(moved);
    let inner = "/srv/verdicts/open/dir/inner.txt";
    plant(inner);
    let file = File::open(moved).unwrap();
    let inner_file = File::open(inner).unwrap();
    remembered(&fixture, moved, &file);
    remembered(&fixture, inner, &inner_file);

    daemon.signal(Signal::SIGSTOP);
    fs::rename(moved, format!("{PROTECTED}/moved.txt")).unwrap();
    fs::rename("/srv/verdicts/open/dir", format!("{PROTECTED}/dir")).unwrap();
    let file_read = read_fd(&fixture, &file);
    let file_mapped = mmap_fd(&fixture, &file);
    let inner_read = read_fd(&fixture, &inner_file);
    let inner_mapped = mmap_fd(&fixture, &inner_file);
    let neighbour = File::open(NEIGHBOUR).unwrap();
    let neighbour_read = read_fd(&fixture, &neighbour);
    daemon.signal(Signal::SIGCONT);
    assert_eq!(file_read, Err(EPERM), "read of a file moved into the tree");
    assert_eq!(
        file_mapped,
        Err(EPERM),
        "mapping of a file moved into the tree"
    );
    assert_eq!(
        inner_read,
        Err(EPERM),
        "read of a file whose directory moved in"
    );
    assert_eq!(
        inner_mapped,
        Err(EPERM),
        "mapping of a file whose directory moved in"
    );
    assert!(neighbour_read.is_ok(), "the neighbour: {neighbour_read:?}");
    refused(&fixture, &file, "a file moved into the tree");
}

/// A mount changes no dentry: the descriptor reads as the full check says (allowed, with the
/// daemon stopped so no rule changes either), and the path, which now reaches the protected
/// tree, is refused.
#[test]
fn a_protected_tree_mounted_over_a_remembered_files_directory() {
    let fixture = Fixture::new();
    plant_tree();
    let daemon = Daemon::start(&config(&fixture, &[&format!("{PROTECTED}/")]));
    let dir = "/srv/verdicts/open/covered";
    let under = format!("{dir}/secret.txt");
    plant(&under);
    let file = File::open(&under).unwrap();
    remembered(&fixture, &under, &file);

    daemon.signal(Signal::SIGSTOP);
    let bound = Command::new("mount")
        .args(["--bind", PROTECTED, dir])
        .status()
        .unwrap();
    let path_read = read_path(&fixture, &under);
    let fd_read = read_fd(&fixture, &file);
    let fd_mapped = mmap_fd(&fixture, &file);
    let unmounted = Command::new("umount").arg(dir).status().unwrap();
    daemon.signal(Signal::SIGCONT);
    assert!(
        bound.success() && unmounted.success(),
        "bind mount and unmount"
    );
    assert_eq!(
        path_read,
        Err(EPERM),
        "the path now reaches the protected tree"
    );
    assert!(
        fd_read.is_ok(),
        "the open file is still the unprotected one: {fd_read:?}"
    );
    assert!(fd_mapped.is_ok(), "mapping it too: {fd_mapped:?}");
    neighbour_readable(&fixture);
}

#[test]
fn a_file_the_watcher_registers_as_protected_is_refused_by_its_remembered_descriptor() {
    let fixture = Fixture::new();
    plant_tree();
    let later = "/srv/verdicts/later";
    fs::create_dir_all(later).unwrap();
    let protected_path = format!("{later}/file.txt");
    let _daemon = Daemon::start(&config(
        &fixture,
        &[&format!("{PROTECTED}/"), &protected_path],
    ));
    let original = "/srv/verdicts/open/linked.txt";
    plant(original);
    let file = File::open(original).unwrap();
    remembered(&fixture, original, &file);

    // A second name at the protected path: the watcher registers the object by identity, so
    // every name of it is refused, and the remembered verdict on the first must not hold.
    fs::hard_link(original, &protected_path).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || read_fd(&fixture, &file)
            == Err(EPERM)),
        "the watcher's registration refuses the remembered descriptor"
    );
    refused(&fixture, &file, "a file the watcher registered");
    assert_eq!(
        read_path(&fixture, original),
        Err(EPERM),
        "its first name too"
    );
}

/// Verdicts reached through a grant are never remembered: when the grant ends or is spent, the
/// next read is refused.
#[test]
fn reads_a_grant_let_through_end_with_the_grant() {
    let fixture = Fixture::new();
    plant_tree();
    let _daemon = Daemon::start(&config(&fixture, &[&format!("{PROTECTED}/")]));
    let file = File::open(SECRET).unwrap();
    assert_eq!(
        read_fd(&fixture, &file),
        Err(EPERM),
        "protected before the grant"
    );

    // Long enough for three slow operations under emulation; the test waits out the rest.
    let granted = kya(&[
        "grant", "--agent", "coder", "--file", SECRET, "--for", "20s",
    ]);
    assert!(granted.status.success(), "{granted:?}");
    let started = std::time::Instant::now();
    let by_path = read_path(&fixture, SECRET);
    let by_descriptor = read_fd(&fixture, &file);
    let mapped = mmap_fd(&fixture, &file);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the test was too slow to use the grant before it ended"
    );
    assert!(by_path.is_ok(), "read under the grant: {by_path:?}");
    assert!(
        by_descriptor.is_ok(),
        "read by descriptor under the grant: {by_descriptor:?}"
    );
    assert!(mapped.is_ok(), "mapped under the grant: {mapped:?}");
    std::thread::sleep(Duration::from_secs(21).saturating_sub(started.elapsed()));
    refused(&fixture, &file, "a file whose timed grant ended");
    assert_eq!(
        read_path(&fixture, SECRET),
        Err(EPERM),
        "by path after the grant"
    );

    let once = kya(&["grant", "--agent", "coder", "--file", SECRET, "--once"]);
    assert!(once.status.success(), "{once:?}");
    assert!(read_path(&fixture, SECRET).is_ok(), "the single use");
    assert_eq!(read_path(&fixture, SECRET), Err(EPERM), "the use is spent");
    refused(&fixture, &file, "a file whose single-use grant was spent");
}
