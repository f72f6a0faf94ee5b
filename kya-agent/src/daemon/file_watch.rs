//! Keeps the file protection rules current while the daemon runs: protected files appear,
//! vanish and are replaced, and the kernel must hear of new identities (the kernel already
//! protects anything at a protected path or inside a protected tree on its own; this adds the
//! new objects' identities, so that hard links and moves reach them too).
use std::{
    os::fd::AsFd as _,
    path::PathBuf,
    sync::{Arc, RwLock},
    thread,
    time::{Duration, Instant},
};

use nix::{
    poll::{PollFd, PollFlags, PollTimeout, poll},
    sys::inotify::{AddWatchFlags, InitFlags, Inotify},
};

use super::{
    kernel_task::{KernelCallError, KernelHandle, Update},
    live_config::LiveConfig,
};
use crate::{
    error_chain,
    files::tables::{FileTables, OwnFiles},
    metrics::{InternalError, Metrics},
    policy,
};

/// Changes often come in bursts (an editor's write-and-rename); resolve once per burst.
const SETTLE: Duration = Duration::from_millis(100);

/// A resolution starts at least this long after the previous one ended. Some watched trees
/// change all the time (browser profiles, a kubelet's pod directories), and one resolution over
/// many homes takes up to seconds: without a pause the watcher would resolve without end. A new
/// object's identity is registered at most `SETTLE`, or the rest of this pause, plus the
/// resolution in progress and its own resolution after it appears.
const MIN_PAUSE: Duration = Duration::from_secs(1);

/// Without any change, the tables are resolved again this often: a change the watches missed
/// (a directory the kernel would not watch, a queue overflow, a read error) or an update the
/// kernel refused is caught up within this time.
pub const RESYNC_INTERVAL: Duration = Duration::from_secs(30);

/// How long to wait before watching again after reading changes failed.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);

/// Adds inotify watches for the file watcher; shared with the reload, which brings new
/// directories to watch.
#[derive(Clone)]
pub struct WatchDirs(Arc<Inotify>);

impl WatchDirs {
    /// Watches each directory of `dirs` for entries appearing, vanishing or moving.
    pub fn add(&self, dirs: &[PathBuf]) {
        let mask = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_ONLYDIR;
        for dir in dirs {
            // A directory that vanished drops its watch by itself; one that came back needs a
            // new one, and adding a watch twice is harmless.
            if let Err(error) = self.0.add_watch(dir.as_path(), mask) {
                tracing::debug!(dir = %crate::text::AgentText::from(dir.as_path()), error = %error, "cannot watch");
            }
        }
    }
}

/// What the file watcher keeps current, and where it reports.
pub struct Watched {
    pub live: Arc<LiveConfig>,
    pub own: OwnFiles,
    pub kernel: KernelHandle,
    /// The tables the kernel enforces now, for the event reader and reloads.
    pub published: Arc<RwLock<FileTables>>,
    pub metrics: Arc<Metrics>,
}

/// Watches the directories behind `initial` and re-resolves on every change, and at least every
/// [`RESYNC_INTERVAL`], publishing each new set of tables in `published` once the kernel has
/// it, until the kernel thread stops. Each resolution uses the config in force; after a reload
/// it starts from the tables the reload published.
pub fn spawn(watched: Watched, initial: FileTables) -> std::io::Result<WatchDirs> {
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC).map_err(std::io::Error::from)?;
    let dirs = WatchDirs(Arc::new(inotify));
    dirs.add(&initial.watch);
    let watcher = Watcher {
        dirs: dirs.clone(),
        watched,
    };
    thread::Builder::new()
        .name("kya-file-watch".to_owned())
        .spawn(move || watcher.run(initial))?;
    Ok(dirs)
}

struct Watcher {
    dirs: WatchDirs,
    watched: Watched,
}

impl Watcher {
    fn run(&self, mut current: FileTables) {
        let mut seen_generation = 0;
        let mut last_end = None;
        loop {
            if let Err(error) = self.wait_for_change() {
                // Never stop: protection by identity of new objects depends on this thread.
                self.failed(
                    "reading file changes failed; resolving again and retrying",
                    &error,
                );
                thread::sleep(RETRY_AFTER_ERROR);
            }
            let woke = Instant::now();
            thread::sleep(resolve_at(woke, last_end).saturating_duration_since(Instant::now()));
            // What changed while we waited is covered by the resolution about to start; only
            // later changes should wake the next one.
            self.drain();
            // A reload that lands while this resolution runs makes it stale: resolve again
            // under the new config rather than lose the change that woke us.
            loop {
                let (generation, config) = self.watched.live.snapshot();
                if generation != seen_generation {
                    current = self
                        .watched
                        .published
                        .read()
                        .expect("file tables lock")
                        .clone();
                    seen_generation = generation;
                }
                let mut next = policy::files_now(&config, &self.watched.own);
                next.keep_identities_from(&current);
                self.dirs.add(&next.watch);
                if next == current {
                    break;
                }
                match self
                    .watched
                    .kernel
                    .set_file_tables_blocking(next.clone(), generation)
                {
                    Ok(Update::Applied) => {
                        self.watched
                            .published
                            .write()
                            .expect("file tables lock")
                            .clone_from(&next);
                        tracing::info!(
                            objects = next.inodes.len(),
                            paths = next.names.len(),
                            "protected files re-resolved"
                        );
                        current = next;
                        break;
                    }
                    Ok(Update::Stale) => {}
                    Err(KernelCallError::Gone) => return,
                    Err(error) => {
                        // Retried at the next change or resync.
                        self.failed(
                            "updating protected files in the kernel failed; the previous rules \
                             stay until the next attempt",
                            &error,
                        );
                        break;
                    }
                }
            }
            // A resolution builds and drops whole tables: hand their pages back.
            super::memory::release_free_heap();
            last_end = Some(Instant::now());
        }
    }

    /// Reads and drops the changes queued now, without waiting for more.
    fn drain(&self) {
        let inotify = &self.dirs.0;
        loop {
            let mut ready = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
            match poll(&mut ready, PollTimeout::ZERO) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if inotify.read_events().is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Returns once a watched directory changed or [`RESYNC_INTERVAL`] passed without a change.
    fn wait_for_change(&self) -> Result<(), nix::Error> {
        let inotify = &self.dirs.0;
        let mut ready = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(RESYNC_INTERVAL).unwrap_or(PollTimeout::MAX);
        match poll(&mut ready, timeout) {
            Ok(0) | Err(nix::Error::EINTR) => Ok(()),
            Ok(_) => inotify.read_events().map(drop),
            Err(error) => Err(error),
        }
    }

    fn failed(&self, what: &str, error: &dyn std::error::Error) {
        self.watched
            .metrics
            .count_internal_error(InternalError::FileWatch);
        tracing::error!(error = %error_chain(error), "{what}");
    }
}

/// When a resolution woken at `woke` starts: once the burst settled, and no sooner than
/// [`MIN_PAUSE`] after the previous resolution ended (`last_end`).
fn resolve_at(woke: Instant, last_end: Option<Instant>) -> Instant {
    let settled = woke + SETTLE;
    last_end.map_or(settled, |end| settled.max(end + MIN_PAUSE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_change_is_resolved_once_it_settled() {
        let woke = Instant::now();
        assert_eq!(resolve_at(woke, None), woke + SETTLE);
    }

    #[test]
    fn a_change_long_after_the_last_resolution_waits_only_to_settle() {
        let end = Instant::now();
        let woke = end + MIN_PAUSE + Duration::from_secs(5);
        assert_eq!(resolve_at(woke, Some(end)), woke + SETTLE);
    }

    #[test]
    fn a_change_right_after_a_resolution_waits_for_the_pause() {
        let end = Instant::now();
        let woke = end + Duration::from_millis(10);
        assert_eq!(resolve_at(woke, Some(end)), end + MIN_PAUSE);
        // Never later than the pause plus the settle time after the change itself.
        assert!(resolve_at(woke, Some(end)) <= woke + MIN_PAUSE + SETTLE);
    }

    /// A tree that changes every 10 ms for a minute, resolutions taking 300 ms each: the
    /// watcher resolves about once per pause plus resolution, not once per settle time, and
    /// no change waits longer than the bound the README states (settle or pause, the
    /// resolution in progress, then its own resolution).
    #[test]
    fn a_tree_that_never_stops_changing_is_resolved_at_the_paced_rate() {
        let resolution = Duration::from_millis(300);
        let change_every = Duration::from_millis(10);
        let origin = Instant::now();
        let minute = origin + Duration::from_mins(1);
        let mut resolutions = Vec::new();
        let mut now = origin;
        let mut last_end = None;
        while now < minute {
            // A change is always waiting: the watcher wakes at once.
            let start = resolve_at(now, last_end);
            let end = start + resolution;
            resolutions.push((start, end));
            last_end = Some(end);
            now = end;
        }
        let paced = 60_000 / (MIN_PAUSE + resolution).as_millis();
        assert!(
            resolutions.len() as u128 <= paced + 1,
            "{} resolutions in a minute, expected at most {}",
            resolutions.len(),
            paced + 1
        );
        let bound = SETTLE.max(MIN_PAUSE) + resolution * 2;
        let mut change = origin;
        while change < resolutions.last().unwrap().0 {
            let covered_by = resolutions
                .iter()
                .find(|(start, _)| *start >= change)
                .expect("a later resolution");
            assert!(
                covered_by.1 - change <= bound,
                "a change at {:?} waited {:?} (bound {bound:?})",
                change - origin,
                covered_by.1 - change
            );
            change += change_every;
        }
    }
}
