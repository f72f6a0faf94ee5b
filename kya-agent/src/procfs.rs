//! What `/proc` says about running processes: the facts the daemon needs to match processes
//! that were already running when it started, and to describe tagged ones.
use std::{
    fs, io,
    path::{Path, PathBuf},
};

use kya_common::tag::InodeKey;

use crate::{
    identity::{IdentityError, Mounts},
    paths::PROC,
};

/// One running process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: u32,
    /// The executable's path, `None` for kernel threads.
    pub exe: Option<PathBuf>,
    /// The executable's identity, `None` for kernel threads.
    pub exe_identity: Option<InodeKey>,
    pub real_uid: u32,
    pub effective_uid: u32,
    /// The cgroup v2 path, relative to the cgroup2 mount ("/" for the root).
    pub cgroup: Option<String>,
}

/// Every process visible now. Processes that exit while being read are left out.
#[must_use]
pub fn processes() -> Vec<ProcessInfo> {
    let Ok(entries) = fs::read_dir(PROC) else {
        return Vec::new();
    };
    let mut mounts = Mounts::of_this_process();
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| process_with(pid, &mut mounts).ok())
        .collect()
}

/// Reads one process.
pub fn process(pid: u32) -> io::Result<ProcessInfo> {
    process_with(pid, &mut Mounts::of_this_process())
}

/// Reads one process, taking its executable's identity on `mounts` (this process's mounts),
/// or on the process's own when its executable is on a mount of another namespace (a
/// container's overlay).
fn process_with(pid: u32, mounts: &mut Mounts) -> io::Result<ProcessInfo> {
    let dir = Path::new(PROC).join(pid.to_string());
    let status = fs::read_to_string(dir.join("status"))?;
    let ppid = status_field(&status, "PPid:")
        .and_then(|fields| fields.first().copied())
        .ok_or_else(|| io::Error::other("no PPid in status"))?;
    let uids = status_field(&status, "Uid:").ok_or_else(|| io::Error::other("no Uid"))?;
    let (real_uid, effective_uid) = match uids.as_slice() {
        [real, effective, ..] => (*real, *effective),
        _ => return Err(io::Error::other("short Uid line")),
    };
    let exe = fs::read_link(dir.join("exe")).ok();
    // statx() through the magic link reaches the executable itself, even when deleted.
    let exe_identity = exe.as_ref().and_then(|_| {
        let link = dir.join("exe");
        match mounts.identity_of(&link) {
            Err(IdentityError::MountNotFound { .. }) => Mounts::of_process(pid).identity_of(&link),
            other => other,
        }
        .ok()
        .map(|identity| identity.key)
    });
    let cgroup = fs::read_to_string(dir.join("cgroup"))
        .ok()
        .and_then(|text| cgroup_v2_path(&text));
    Ok(ProcessInfo {
        pid,
        ppid,
        exe,
        exe_identity,
        real_uid,
        effective_uid,
        cgroup,
    })
}

/// Thread ids of a process (including the main thread).
pub fn threads(pid: u32) -> io::Result<Vec<u32>> {
    Ok(
        fs::read_dir(Path::new(PROC).join(pid.to_string()).join("task"))?
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
            .collect(),
    )
}

/// The path of a process's executable, for display.
#[must_use]
pub fn exe_path(pid: u32) -> Option<PathBuf> {
    fs::read_link(Path::new(PROC).join(pid.to_string()).join("exe")).ok()
}

/// The unsigned numbers after `key` on its line of `/proc/PID/status`.
fn status_field(status: &str, key: &str) -> Option<Vec<u32>> {
    let line = status.lines().find(|line| line.starts_with(key))?;
    line[key.len()..]
        .split_whitespace()
        .map(|value| value.parse().ok())
        .collect()
}

/// The cgroup v2 path from `/proc/PID/cgroup` (the `0::` line).
fn cgroup_v2_path(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(|path| path.trim_end_matches(" (deleted)").to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_parse() {
        let status = "Name:\tbash\nPPid:\t42\nUid:\t1000\t1001\t1002\t1003\n";
        assert_eq!(status_field(status, "PPid:"), Some(vec![42]));
        assert_eq!(
            status_field(status, "Uid:"),
            Some(vec![1000, 1001, 1002, 1003])
        );
        assert_eq!(status_field(status, "Gid:"), None);
    }

    #[test]
    fn cgroup_v2_line_is_found_among_v1_lines() {
        let text = "12:cpu,cpuacct:/x\n0::/agents/coder\n";
        assert_eq!(cgroup_v2_path(text).as_deref(), Some("/agents/coder"));
        assert_eq!(cgroup_v2_path("1:name=systemd:/\n"), None);
    }

    #[test]
    fn this_process_is_readable() {
        let me = process(std::process::id()).expect("read own /proc entry");
        assert_eq!(me.pid, std::process::id());
        assert!(me.exe_identity.is_some(), "own executable has an identity");
        assert!(threads(me.pid).expect("own threads").contains(&me.pid));
    }
}
