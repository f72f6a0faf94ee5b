//! The owner watch: every agent's owner, every approver the config lists and the approver of
//! every grant in force must be a living account. Checked at start, after each reload, when
//! `/etc/passwd` or `/etc/shadow` change (they are replaced by rename, so `/etc` itself is
//! watched for those names) and every [`CHECK_INTERVAL`] (NSS sources such as LDAP have no
//! file to watch). An agent whose owner is gone is contained (see `grant_service::containment`
//! and `Config::enforced`); the grants of a gone approver are revoked. Nothing here ever ends
//! a containment: only `kya reload` does.
use std::{
    collections::{BTreeMap, BTreeSet},
    ffi::OsStr,
    sync::Arc,
    thread,
    time::Duration,
};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::sync::Notify;

use super::{
    grant_service::{GrantHandle, containment::Internal},
    kernel_task::KernelHandle,
    live_config::LiveConfig,
    pidfd::PidFd,
    reload::Reloader,
};
use crate::{
    accounts::{self, Account, Gone},
    config::{Config, OnOwnerGone},
    error_chain,
    metrics::Metrics,
    paths,
};

/// How often accounts are checked without any change to the files.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// How often the processes of a contained agent with `on_owner_gone = "stop"` are killed
/// again between checks: a process of it started after a kill lives at most this long.
const STOP_INTERVAL: Duration = Duration::from_secs(1);

/// The directory holding the user database files, and their names in it.
const ETC: &str = "/etc";
const USER_DATABASE: [&str; 2] = ["passwd", "shadow"];

/// Rounds of SIGKILL for the processes of a stopped agent: a fork between listing and killing
/// escapes one round.
const KILL_ROUNDS: usize = 20;

/// What the watch works with.
pub struct OwnerWatch {
    pub live: Arc<LiveConfig>,
    pub grants: GrantHandle,
    pub reloader: Arc<Reloader>,
    pub kernel: KernelHandle,
    pub metrics: Arc<Metrics>,
    /// Wakes the watch for a check now.
    pub wake: Arc<Notify>,
}

/// What one look at the user database found.
struct Findings {
    /// Agents not yet contained whose owner is gone: (agent, owner, why).
    ghosts: Vec<(String, String, Gone)>,
    /// Approvers (listed or of a grant in force) whose account is gone.
    gone_approvers: BTreeMap<String, Gone>,
    /// Listed approvers: (agent, approver, gone).
    listed: Vec<(String, String, bool)>,
}

impl OwnerWatch {
    /// The watch for the daemon that `reloader` reloads.
    pub fn new(reloader: &Arc<Reloader>, metrics: Arc<Metrics>) -> Self {
        Self {
            live: Arc::clone(&reloader.live),
            grants: reloader.grants.clone(),
            reloader: Arc::clone(reloader),
            kernel: reloader.kernel.clone(),
            metrics,
            wake: Arc::clone(&reloader.owner_check),
        }
    }

    /// Checks now, then on every wake-up and every [`CHECK_INTERVAL`], until aborted.
    pub async fn run(self) {
        if let Err(error) = watch_user_database(Arc::clone(&self.wake)) {
            tracing::error!(error = %error, "cannot watch /etc/passwd and /etc/shadow; accounts are checked every 30 s");
        }
        loop {
            let stopped = self.check().await;
            let next_check = tokio::time::Instant::now() + CHECK_INTERVAL;
            loop {
                tokio::select! {
                    () = self.wake.notified() => break,
                    () = tokio::time::sleep_until(next_check) => break,
                    () = tokio::time::sleep(STOP_INTERVAL), if !stopped.is_empty() => {
                        for (agent, id) in &stopped {
                            self.stop(agent, *id).await;
                        }
                    }
                }
            }
        }
    }

    /// Checks the accounts and contains what must be; the contained agents to stop (name and
    /// id), whose processes are killed again every [`STOP_INTERVAL`] until the next check.
    async fn check(&self) -> Vec<(String, u32)> {
        let config = self.live.current();
        let mut stopped = Vec::new();
        let (Some(contained), Some(approvers)) = (
            self.grants
                .internal(|reply| Internal::Contained { reply })
                .await,
            self.grants
                .internal(|reply| Internal::Approvers { reply })
                .await,
        ) else {
            return stopped;
        };
        let already: BTreeSet<String> = contained.keys().cloned().collect();
        let looked_at = Arc::clone(&config);
        let findings = tokio::task::spawn_blocking(move || look(&looked_at, &already, approvers))
            .await
            .expect("looking accounts up does not panic");
        for (agent, owner, reason) in findings.ghosts {
            self.grants
                .internal(|reply| Internal::Contain {
                    agent,
                    owner,
                    reason,
                    reply,
                })
                .await;
        }
        if let Err(error) = self.reloader.suspend().await {
            tracing::error!(error = %error_chain(&error), "cannot suspend the allowlists of contained agents");
        }
        for (approver, reason) in findings.gone_approvers {
            let revoked = self
                .grants
                .internal(|reply| Internal::RevokeApprover {
                    approver: approver.clone(),
                    reason,
                    reply,
                })
                .await
                .unwrap_or(0);
            if revoked > 0 {
                tracing::warn!(approver = %approver, reason = reason.label(), revoked, "approver gone: their grants revoked");
            }
        }
        for (agent, approver, gone) in findings.listed {
            self.metrics.set_approver_gone(&agent, &approver, gone);
        }
        let Some(contained) = self
            .grants
            .internal(|reply| Internal::Contained { reply })
            .await
        else {
            return stopped;
        };
        self.metrics.set_contained(
            &contained
                .iter()
                .map(|(agent, containment)| (agent.clone(), containment.reason.label()))
                .collect(),
        );
        for agent in contained.keys() {
            if let Some(agent) = config.agent_by_name(agent)
                && agent.on_owner_gone() == OnOwnerGone::Stop
            {
                self.stop(agent.name(), agent.id().get()).await;
                stopped.push((agent.name().to_owned(), agent.id().get()));
            }
        }
        stopped
    }

    /// Kills every process tagged as the agent, round after round until none is left. Each
    /// round holds the listed processes by pidfd, then lists again and kills only those still
    /// tagged as the agent: a pid reused in between by another process is never signalled.
    async fn stop(&self, agent: &str, id: u32) {
        for _ in 0..KILL_ROUNDS {
            let Some(listed) = self.processes_of(id).await else {
                return;
            };
            if listed.is_empty() {
                return;
            }
            let held: Vec<(u32, PidFd)> = listed
                .into_iter()
                .filter_map(|pid| PidFd::open(pid).ok().map(|process| (pid, process)))
                .collect();
            let Some(still) = self.processes_of(id).await else {
                return;
            };
            for (pid, process) in held.iter().filter(|(pid, _)| still.contains(pid)) {
                let killed = process.kill();
                tracing::warn!(agent = %agent, pid, killed = killed.is_ok(), "owner gone: agent process killed (on_owner_gone = \"stop\")");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::error!(agent = %agent, "processes of a stopped agent keep appearing; killing again at the next check");
    }

    /// The processes (thread group ids) the kernel has tagged as agent `id` and that still run
    /// (a killed process stays listed until its parent reaps it; it runs nothing).
    async fn processes_of(&self, id: u32) -> Option<BTreeSet<u32>> {
        let records = self.kernel.tagged_tasks().await.ok()?;
        Some(
            records
                .iter()
                .filter(|record| record.tag.agent == id)
                .map(|record| record.tgid)
                .filter(|&pid| !is_zombie(pid))
                .collect(),
        )
    }
}

/// Whether every thread of process `pid` has exited (it waits to be reaped, or is gone). A
/// process whose main thread exited while others run shows the main thread as a zombie; its
/// other threads (`/proc/PID/task/*`) say it still runs, so it is killed like any other. A
/// process whose threads cannot be listed for another reason counts as running: it is killed
/// (by pidfd, so a process that is gone is never signalled).
fn is_zombie(pid: u32) -> bool {
    let tasks = std::path::Path::new(paths::PROC)
        .join(pid.to_string())
        .join("task");
    let tasks = match std::fs::read_dir(tasks) {
        Ok(tasks) => tasks,
        Err(error) => return error.kind() == std::io::ErrorKind::NotFound,
    };
    !tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            // The state follows the command name, which may hold spaces and parentheses.
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X']))
        })
    })
}

/// Looks up the owners of the agents not yet contained, the listed approvers and the
/// approvers of grants in force. Blocks (NSS).
fn look(config: &Config, contained: &BTreeSet<String>, approvers: BTreeSet<String>) -> Findings {
    let mut states: BTreeMap<String, Account> = BTreeMap::new();
    let mut state = |name: &str| {
        *states
            .entry(name.to_owned())
            .or_insert_with(|| accounts::state_of(name))
    };
    let mut findings = Findings {
        ghosts: Vec::new(),
        gone_approvers: BTreeMap::new(),
        listed: Vec::new(),
    };
    for agent in config.agents() {
        if !contained.contains(agent.name())
            && let Account::Gone(reason) = state(agent.owner())
        {
            findings
                .ghosts
                .push((agent.name().to_owned(), agent.owner().to_owned(), reason));
        }
        for approver in agent.approvers() {
            let account = state(approver);
            findings.listed.push((
                agent.name().to_owned(),
                approver.clone(),
                matches!(account, Account::Gone(_)),
            ));
        }
    }
    let listed: BTreeSet<String> = findings
        .listed
        .iter()
        .map(|(_, approver, _)| approver.clone())
        .collect();
    for approver in approvers.into_iter().chain(listed) {
        if let Account::Gone(reason) = state(&approver) {
            findings.gone_approvers.insert(approver, reason);
        }
    }
    findings
}

/// Wakes `wake` whenever `/etc/passwd` or `/etc/shadow` is written or replaced.
fn watch_user_database(wake: Arc<Notify>) -> std::io::Result<()> {
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC).map_err(std::io::Error::from)?;
    inotify
        .add_watch(
            ETC,
            AddWatchFlags::IN_CLOSE_WRITE
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_DELETE
                | AddWatchFlags::IN_ONLYDIR,
        )
        .map_err(std::io::Error::from)?;
    thread::Builder::new()
        .name("kya-owner-watch".to_owned())
        .spawn(move || {
            loop {
                match inotify.read_events() {
                    Ok(events) => {
                        if events.iter().any(|event| {
                            event
                                .name
                                .as_deref()
                                .is_some_and(|name| USER_DATABASE.iter().any(|db| OsStr::new(db) == name))
                        }) {
                            // The tools write a lock file and a copy first; let them finish.
                            thread::sleep(Duration::from_millis(100));
                            wake.notify_one();
                        }
                    }
                    Err(error) => {
                        tracing::error!(error = %error, "reading /etc changes failed; accounts are checked every 30 s");
                        return;
                    }
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::{thread, time::Duration};

    use super::{PidFd, is_zombie};

    extern "C" fn wait_forever(_: *mut libc::c_void) -> *mut libc::c_void {
        loop {
            // SAFETY: pause has no preconditions.
            unsafe { libc::pause() };
        }
    }

    /// A process whose main thread has exited while another thread runs is not a zombie: a
    /// stopped agent cannot escape the kill that way.
    #[test]
    fn a_process_whose_main_thread_exited_still_runs() {
        // SAFETY: the child only calls async-signal-safe functions and the raw thread API (no
        // allocation), then ends its main thread alone.
        let child = match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => unsafe {
                let mut thread: libc::pthread_t = 0;
                libc::pthread_create(
                    &raw mut thread,
                    std::ptr::null(),
                    wait_forever,
                    std::ptr::null_mut(),
                );
                libc::syscall(libc::SYS_exit, 0);
                libc::_exit(0)
            },
            nix::unistd::ForkResult::Parent { child } => child,
        };
        let pid = u32::try_from(child.as_raw()).unwrap();
        thread::sleep(Duration::from_millis(300));
        assert!(!is_zombie(pid), "its second thread still runs");
        PidFd::open(pid).unwrap().kill().unwrap();
        nix::sys::wait::waitpid(child, None).unwrap();
        assert!(is_zombie(pid), "reaped: gone");
    }
}
