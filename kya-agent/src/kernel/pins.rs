//! Where kya pins its maps and links in bpffs, so that enforcement outlives the daemon.
//!
//! ```text
//! /sys/fs/bpf/kya/maps-<layout>/<MAP>       every map (tags, rules, grants, counters, events)
//! /sys/fs/bpf/kya/links/<generation>/<prog> every attached program, one generation per start
//! ```
//!
//! A starting daemon reuses the maps pinned under its own layout fingerprint (so tags, grants
//! and counts carry over), attaches its programs and pins them as a new generation, and only
//! then removes the older generations: there is never a moment without enforcement, and never
//! two generations once the start is done. Maps of another layout (another kya build) are not
//! reused; they are removed with the links that used them.
use std::{
    fs, io,
    path::{Path, PathBuf},
};

use aya::programs::links::{FdLink, PinnedLink};
use kya_common::maps::layout_fingerprint;

/// The pin directories under one root.
#[derive(Debug, Clone)]
pub struct PinDirs {
    root: PathBuf,
}

impl PinDirs {
    #[must_use]
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }

    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where this build's maps are pinned.
    #[must_use]
    pub fn maps(&self) -> PathBuf {
        self.root.join(format!("maps-{:08x}", layout_fingerprint()))
    }

    fn links(&self) -> PathBuf {
        self.root.join("links")
    }

    /// Creates the directories; returns whether maps of this layout are pinned already (a
    /// takeover).
    pub fn prepare(&self) -> io::Result<bool> {
        fs::create_dir_all(self.maps())?;
        fs::create_dir_all(self.links())?;
        Ok(fs::read_dir(self.maps())?.next().is_some())
    }

    /// A new, empty generation directory for this start's links.
    pub fn new_generation(&self) -> io::Result<PathBuf> {
        let newest = generations(&self.links())?
            .iter()
            .filter_map(|(number, _)| *number)
            .max()
            .unwrap_or(0);
        let dir = self.links().join((newest + 1).to_string());
        fs::create_dir(&dir)?;
        Ok(dir)
    }

    /// Removes every link generation but `keep` (detaching its programs) and every map
    /// directory of another layout. Returns how many pins were removed.
    pub fn retire_all_but(&self, keep: &Path) -> io::Result<usize> {
        let mut removed = 0;
        for (_, dir) in generations(&self.links())? {
            if dir != keep {
                removed += remove_pins(&dir)?;
            }
        }
        let current = self.maps();
        for entry in fs::read_dir(&self.root)? {
            let path = entry?.path();
            let is_maps = path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("maps-"));
            if is_maps && path != current {
                removed += remove_pins(&path)?;
            }
        }
        Ok(removed)
    }

    /// The ids of the programs behind every pinned link: what the kernel runs for kya. Links
    /// that cannot be read are skipped (the caller waits for the others).
    #[must_use]
    pub fn linked_program_ids(&self) -> Vec<u32> {
        let Ok(generations) = generations(&self.links()) else {
            return Vec::new();
        };
        let mut ids: Vec<u32> = generations
            .iter()
            .filter_map(|(_, dir)| fs::read_dir(dir).ok())
            .flat_map(|entries| entries.filter_map(Result::ok))
            .filter_map(|entry| PinnedLink::from_pin(entry.path()).ok())
            .filter_map(|link| FdLink::from(link).info().ok())
            .map(|info| info.program_id())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Removes every pin and directory: every program detaches once nothing else holds it,
    /// and the maps go with them. Returns how many pins were removed.
    pub fn remove_everything(&self) -> io::Result<usize> {
        if !self.root.exists() {
            return Ok(0);
        }
        let mut removed = 0;
        for (_, dir) in generations(&self.links())? {
            removed += remove_pins(&dir)?;
        }
        let _ = fs::remove_dir(self.links());
        for entry in fs::read_dir(&self.root)? {
            let path = entry?.path();
            if path.is_dir() {
                removed += remove_pins(&path)?;
            } else {
                fs::remove_file(&path)?;
                removed += 1;
            }
        }
        fs::remove_dir(&self.root)?;
        Ok(removed)
    }
}

/// Which of the programs `ids` the kernel still has loaded.
#[must_use]
pub fn still_loaded(ids: &[u32]) -> Vec<u32> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .map(|program| program.id())
        .filter(|id| ids.contains(id))
        .collect()
}

/// The generation directories under `links`, with their numbers where they parse.
fn generations(links: &Path) -> io::Result<Vec<(Option<u64>, PathBuf)>> {
    if !links.exists() {
        return Ok(Vec::new());
    }
    fs::read_dir(links)?
        .map(|entry| {
            let path = entry?.path();
            let number = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.parse().ok());
            Ok((number, path))
        })
        .collect()
}

/// Unlinks every pin in `dir` and then `dir` itself.
fn remove_pins(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        fs::remove_file(entry?.path())?;
        removed += 1;
    }
    fs::remove_dir(dir)?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_root(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kya-pins-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn generations_count_up_and_old_ones_are_retired() {
        let root = temp_root("generations");
        let pins = PinDirs::new(&root);
        assert!(!pins.prepare().unwrap(), "nothing to take over at first");
        fs::write(pins.maps().join("TASK_TAGS"), b"").unwrap();
        assert!(pins.prepare().unwrap(), "this layout's maps are taken over");
        let first = pins.new_generation().unwrap();
        fs::write(first.join("file_open"), b"").unwrap();
        let second = pins.new_generation().unwrap();
        assert_eq!(second.file_name().unwrap(), "2");
        fs::write(second.join("file_open"), b"").unwrap();
        let stale_maps = root.join("maps-00000000");
        fs::create_dir(&stale_maps).unwrap();
        fs::write(stale_maps.join("TASK_TAGS"), b"").unwrap();
        assert_eq!(pins.retire_all_but(&second).unwrap(), 2);
        assert!(!first.exists() && !stale_maps.exists() && second.exists());
        assert_eq!(pins.remove_everything().unwrap(), 2);
        assert!(!root.exists());
        assert_eq!(pins.remove_everything().unwrap(), 0, "nothing left is fine");
    }
}
