//! Keeps the file protection rules current while the daemon runs: protected files appear,
//! vanish and are replaced, and the kernel must hear of new identities (the kernel already
//! protects anything at a protected path or inside a protected tree on its own; this adds the
//! new objects' identities, so that hard links and moves reach them too).
use std::{
    collections::HashSet,
    path::PathBuf,
    sync::{Arc, RwLock},
    thread,
    time::Duration,
};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::kernel_task::KernelHandle;
use crate::{
    config::Config,
    files::{
        self,
        tables::{self, FileTables, OwnFiles},
    },
};

/// Changes often come in bursts (an editor's write-and-rename); resolve once per burst.
const SETTLE: Duration = Duration::from_millis(100);

/// Resolves the catalogue, the config's file rules and kya's own files against the
/// filesystem now.
#[must_use]
pub fn resolve_now(config: &Config, own: &OwnFiles) -> FileTables {
    let mut tables = tables::resolve(&files::resolve(config, &files::system_homes()));
    tables.add_sockets(config);
    tables.add_own_files(own);
    tables
}

/// Watches the directories behind `initial` and re-resolves on every change, publishing each
/// new set of tables in `published` once the kernel has it, until the kernel thread stops.
pub fn spawn(
    config: Arc<Config>,
    own: OwnFiles,
    initial: FileTables,
    kernel: KernelHandle,
    published: Arc<RwLock<FileTables>>,
) -> std::io::Result<thread::JoinHandle<()>> {
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC).map_err(std::io::Error::from)?;
    thread::Builder::new()
        .name("kya-file-watch".to_owned())
        .spawn(move || watch(&inotify, &config, &own, initial, &kernel, &published))
}

fn watch(
    inotify: &Inotify,
    config: &Config,
    own: &OwnFiles,
    mut current: FileTables,
    kernel: &KernelHandle,
    published: &RwLock<FileTables>,
) {
    let mut watched = HashSet::new();
    add_watches(inotify, &current.watch, &mut watched);
    loop {
        if let Err(error) = inotify.read_events() {
            tracing::error!(error = %error, "file watch stopped; protected files created from now on are protected by path only");
            return;
        }
        thread::sleep(SETTLE);
        let mut next = resolve_now(config, own);
        next.keep_identities_from(&current);
        add_watches(inotify, &next.watch, &mut watched);
        if next == current {
            continue;
        }
        match kernel.set_file_tables_blocking(next.clone()) {
            Ok(Ok(())) => {
                published
                    .write()
                    .expect("file tables lock")
                    .clone_from(&next);
                tracing::info!(
                    objects = next.inodes.len(),
                    paths = next.names.len(),
                    "protected files re-resolved"
                );
                current = next;
            }
            Ok(Err(message)) => {
                tracing::error!(error = %message, "updating protected files in the kernel failed; the previous rules stay");
            }
            Err(_) => return,
        }
    }
}

fn add_watches(inotify: &Inotify, dirs: &[PathBuf], watched: &mut HashSet<PathBuf>) {
    let mask = AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ONLYDIR;
    for dir in dirs {
        // A directory that vanished drops its watch by itself; one that came back needs a new
        // one, and adding a watch twice is harmless.
        match inotify.add_watch(dir.as_path(), mask) {
            Ok(_) => {
                watched.insert(dir.clone());
            }
            Err(error) => {
                tracing::debug!(dir = %dir.display(), error = %error, "cannot watch");
            }
        }
    }
}
