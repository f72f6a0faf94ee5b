//! The one thread that owns the loaded kernel programs; everything else sends it commands and
//! waits for the reply.
use std::{
    collections::{BTreeMap, HashSet},
    thread,
};

use kya_common::tag::{TaggedTaskRecord, TaskTag};
use tokio::sync::{mpsc, oneshot};

use super::adopt;
use crate::{
    files::tables::FileTables,
    kernel::{Kernel, KernelError, KernelGrant, KernelStats},
    network::table::NetTable,
    policy::Policy,
};

/// What became of an update computed from the config of one generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    Applied,
    /// A reload put a newer config in force after the update was computed; nothing was
    /// written. The sender computes it again from the config in force.
    Stale,
}

/// Where the kernel thread sends a command's outcome.
type Reply<T> = oneshot::Sender<Result<T, KernelError>>;

/// Commands the kernel thread carries out.
enum Command {
    TaggedTasks(Reply<Vec<TaggedTaskRecord>>),
    Tag {
        processes: BTreeMap<u32, TaskTag>,
        reply: Reply<()>,
    },
    SetFileTables {
        tables: Box<FileTables>,
        generation: u64,
        reply: Reply<Update>,
    },
    SetNetTable {
        table: Box<NetTable>,
        generation: u64,
        reply: Reply<Update>,
    },
    /// Put a whole config's policy in force as `generation`, then tag the running processes
    /// its rules match; the reply is how many were tagged.
    ApplyPolicy {
        policy: Box<Policy>,
        generation: u64,
        reply: Reply<usize>,
    },
    InsertGrant {
        grant: Box<KernelGrant>,
        reply: Reply<()>,
    },
    RemoveGrant {
        id: u32,
        keep_opened: bool,
        reply: Reply<()>,
    },
    UnspentOnceGrants(Reply<HashSet<u32>>),
    GrantIds(Reply<HashSet<u32>>),
    Stats(Reply<KernelStats>),
    /// Drop the kernel programs (detaching them) and end the thread.
    Shutdown,
}

/// A cloneable handle to the kernel thread.
#[derive(Clone)]
pub struct KernelHandle {
    commands: mpsc::Sender<Command>,
}

/// Why a command to the kernel thread did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum KernelCallError {
    /// The kernel thread is gone (it only stops when the daemon shuts down).
    #[error("the daemon's kernel thread has stopped")]
    Gone,
    /// The kernel thread carried the command out and the kernel refused it.
    #[error(transparent)]
    Kernel(#[from] KernelError),
}

impl KernelHandle {
    /// Every tagged task now.
    pub async fn tagged_tasks(&self) -> Result<Vec<TaggedTaskRecord>, KernelCallError> {
        self.call(Command::TaggedTasks).await
    }

    /// Tags every thread of the given processes.
    pub async fn tag(&self, processes: BTreeMap<u32, TaskTag>) -> Result<(), KernelCallError> {
        self.call(|reply| Command::Tag { processes, reply }).await
    }

    /// Puts a grant in force.
    pub async fn insert_grant(&self, grant: KernelGrant) -> Result<(), KernelCallError> {
        let grant = Box::new(grant);
        self.call(|reply| Command::InsertGrant { grant, reply })
            .await
    }

    /// Ends a grant at once; see `Kernel::remove_grant` for `keep_opened`.
    pub async fn remove_grant(&self, id: u32, keep_opened: bool) -> Result<(), KernelCallError> {
        self.call(|reply| Command::RemoveGrant {
            id,
            keep_opened,
            reply,
        })
        .await
    }

    /// Ids of single-use grants the kernel has not spent.
    pub async fn unspent_once_grants(&self) -> Result<HashSet<u32>, KernelCallError> {
        self.call(Command::UnspentOnceGrants).await
    }

    /// Ids of the grants with keys in the kernel.
    pub async fn grant_ids(&self) -> Result<HashSet<u32>, KernelCallError> {
        self.call(Command::GrantIds).await
    }

    /// Every count and map size, for the metrics.
    pub async fn stats(&self) -> Result<KernelStats, KernelCallError> {
        self.call(Command::Stats).await
    }

    /// Puts `policy` in force as config generation `generation` (see `Kernel::apply_policy`)
    /// and tags the running processes its rules match. Updates computed from other generations
    /// are refused as stale from then on.
    pub async fn apply_policy(
        &self,
        policy: Policy,
        generation: u64,
    ) -> Result<usize, KernelCallError> {
        let policy = Box::new(policy);
        self.call(|reply| Command::ApplyPolicy {
            policy,
            generation,
            reply,
        })
        .await
    }

    /// Replaces the file protection rules, computed from config generation `generation`;
    /// callable from a plain thread.
    pub fn set_file_tables_blocking(
        &self,
        tables: FileTables,
        generation: u64,
    ) -> Result<Update, KernelCallError> {
        let tables = Box::new(tables);
        self.call_blocking(|reply| Command::SetFileTables {
            tables,
            generation,
            reply,
        })
    }

    /// Replaces the network allowlist, computed from config generation `generation`;
    /// callable from a plain thread.
    pub fn set_net_table_blocking(
        &self,
        table: NetTable,
        generation: u64,
    ) -> Result<Update, KernelCallError> {
        let table = Box::new(table);
        self.call_blocking(|reply| Command::SetNetTable {
            table,
            generation,
            reply,
        })
    }

    /// Detaches everything and ends the kernel thread, whoever else still holds a handle.
    pub fn shutdown_blocking(&self) {
        let _ = self.commands.blocking_send(Command::Shutdown);
    }

    /// Sends the command that `command` makes around a reply channel, and waits for the reply.
    async fn call<T>(
        &self,
        command: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, KernelCallError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| KernelCallError::Gone)?;
        Ok(answer.await.map_err(|_| KernelCallError::Gone)??)
    }

    /// [`Self::call`] from a plain thread.
    fn call_blocking<T>(
        &self,
        command: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, KernelCallError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .blocking_send(command(reply))
            .map_err(|_| KernelCallError::Gone)?;
        Ok(answer
            .blocking_recv()
            .map_err(|_| KernelCallError::Gone)??)
    }
}

/// Moves `kernel`, enforcing config generation 0, onto its own thread. The thread, and with it
/// the kernel programs, ends on `shutdown_blocking` or when every handle is dropped.
pub fn spawn(mut kernel: Kernel) -> (KernelHandle, thread::JoinHandle<()>) {
    let (commands, mut inbox) = mpsc::channel(64);
    let thread = thread::Builder::new()
        .name("kya-kernel".to_owned())
        .spawn(move || {
            // The config generation the maps hold. Commands run one at a time, so an update
            // checked against it cannot interleave with a reload.
            let mut enforced = 0_u64;
            while let Some(command) = inbox.blocking_recv() {
                match command {
                    Command::TaggedTasks(reply) => {
                        let _ = reply.send(kernel.tagged_tasks());
                    }
                    Command::Shutdown => break,
                    Command::SetNetTable {
                        table,
                        generation,
                        reply,
                    } => {
                        let result =
                            unless_stale(generation, enforced, || kernel.set_net_table(&table));
                        let _ = reply.send(result);
                    }
                    Command::SetFileTables {
                        tables,
                        generation,
                        reply,
                    } => {
                        let result =
                            unless_stale(generation, enforced, || kernel.set_file_tables(&tables));
                        let _ = reply.send(result);
                    }
                    Command::ApplyPolicy {
                        policy,
                        generation,
                        reply,
                    } => {
                        // Whatever happens, the maps now hold (some of) this generation: older
                        // updates must not be written over it.
                        enforced = generation;
                        let result = kernel
                            .apply_policy(&policy)
                            .and_then(|()| adopt::adopt_existing(&mut kernel, &policy.rules));
                        let _ = reply.send(result);
                    }
                    Command::InsertGrant { grant, reply } => {
                        let _ = reply.send(kernel.insert_grant(&grant));
                    }
                    Command::RemoveGrant {
                        id,
                        keep_opened,
                        reply,
                    } => {
                        let result = kernel.remove_grant(id, keep_opened);
                        let _ = reply.send(result);
                    }
                    Command::UnspentOnceGrants(reply) => {
                        let _ = reply.send(kernel.unspent_once_grants());
                    }
                    Command::GrantIds(reply) => {
                        let _ = reply.send(kernel.grant_ids());
                    }
                    Command::Stats(reply) => {
                        let _ = reply.send(kernel.stats());
                    }
                    Command::Tag { processes, reply } => {
                        let result = adopt::tag_processes(&mut kernel, &processes);
                        let _ = reply.send(result);
                    }
                }
            }
        })
        .expect("spawning the kernel thread");
    (KernelHandle { commands }, thread)
}

/// Runs `write` if `generation` is the one the maps hold.
fn unless_stale(
    generation: u64,
    enforced: u64,
    write: impl FnOnce() -> Result<(), KernelError>,
) -> Result<Update, KernelError> {
    if generation != enforced {
        return Ok(Update::Stale);
    }
    write().map(|()| Update::Applied)
}
