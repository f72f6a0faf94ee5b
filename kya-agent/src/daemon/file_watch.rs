//! Keeps the file protection rules current while the daemon runs: protected files appear,
//! vanish and are replaced, and the kernel must hear of new identities (the kernel already
//! protects anything at a protected path or inside a protected tree on its own; this adds the
//! new objects' identities, so that hard links and moves reach them too).
use std::{
    path::PathBuf,
    sync::{Arc, RwLock},
    thread,
    time::Duration,
};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::{
    kernel_task::{KernelCallError, KernelHandle, Update},
    live_config::LiveConfig,
};
use crate::{
    error_chain,
    files::tables::{FileTables, OwnFiles},
    policy,
};

/// Changes often come in bursts (an editor's write-and-rename); resolve once per burst.
const SETTLE: Duration = Duration::from_millis(100);

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
                tracing::debug!(dir = %dir.display(), error = %error, "cannot watch");
            }
        }
    }
}

/// Watches the directories behind `initial` and re-resolves on every change, publishing each
/// new set of tables in `published` once the kernel has it, until the kernel thread stops.
/// Each resolution uses the config in force; after a reload it starts from the tables the
/// reload published.
pub fn spawn(
    live: Arc<LiveConfig>,
    own: OwnFiles,
    initial: FileTables,
    kernel: KernelHandle,
    published: Arc<RwLock<FileTables>>,
) -> std::io::Result<WatchDirs> {
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC).map_err(std::io::Error::from)?;
    let dirs = WatchDirs(Arc::new(inotify));
    dirs.add(&initial.watch);
    let watcher = Watcher {
        dirs: dirs.clone(),
        live,
        own,
        kernel,
        published,
    };
    thread::Builder::new()
        .name("kya-file-watch".to_owned())
        .spawn(move || watcher.run(initial))?;
    Ok(dirs)
}

struct Watcher {
    dirs: WatchDirs,
    live: Arc<LiveConfig>,
    own: OwnFiles,
    kernel: KernelHandle,
    published: Arc<RwLock<FileTables>>,
}

impl Watcher {
    fn run(&self, mut current: FileTables) {
        let mut seen_generation = 0;
        loop {
            if let Err(error) = self.dirs.0.read_events() {
                tracing::error!(error = %error, "file watch stopped; protected files created from now on are protected by path only");
                return;
            }
            thread::sleep(SETTLE);
            // A reload that lands while this resolution runs makes it stale: resolve again
            // under the new config rather than lose the change that woke us.
            loop {
                let (generation, config) = self.live.snapshot();
                if generation != seen_generation {
                    current = self.published.read().expect("file tables lock").clone();
                    seen_generation = generation;
                }
                let mut next = policy::files_now(&config, &self.own);
                next.keep_identities_from(&current);
                self.dirs.add(&next.watch);
                if next == current {
                    break;
                }
                match self
                    .kernel
                    .set_file_tables_blocking(next.clone(), generation)
                {
                    Ok(Update::Applied) => {
                        self.published
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
                        tracing::error!(error = %error_chain(&error), "updating protected files in the kernel failed; the previous rules stay");
                        break;
                    }
                }
            }
        }
    }
}
