//! The one thread that owns the loaded kernel programs; everything else sends it commands and
//! waits for the reply.
use std::{
    collections::{BTreeMap, HashSet},
    thread,
};

use kya_common::tag::{TaggedTaskRecord, TaskTag};
use tokio::sync::{mpsc, oneshot};

use crate::{
    error_chain,
    files::tables::FileTables,
    kernel::{Kernel, KernelGrant, KernelStats, Policy},
    network::table::NetTable,
    tagging::{adopt, rules::CompiledRules},
};

/// What became of an update computed from the config of one generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    Applied,
    /// A reload put a newer config in force after the update was computed; nothing was
    /// written. The sender computes it again from the config in force.
    Stale,
}

/// Commands the kernel thread carries out.
enum Command {
    TaggedTasks(oneshot::Sender<Result<Vec<TaggedTaskRecord>, String>>),
    Tag {
        processes: BTreeMap<u32, TaskTag>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    SetFileTables {
        tables: Box<FileTables>,
        generation: u64,
        reply: oneshot::Sender<Result<Update, String>>,
    },
    SetNetTable {
        table: Box<NetTable>,
        generation: u64,
        reply: oneshot::Sender<Result<Update, String>>,
    },
    /// Put a whole config's policy in force as `generation`, then tag the running processes
    /// its rules match; the reply is how many were tagged.
    ApplyPolicy {
        policy: Box<Policy>,
        rules: Box<CompiledRules>,
        generation: u64,
        reply: oneshot::Sender<Result<usize, String>>,
    },
    InsertGrant {
        grant: Box<KernelGrant>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    RemoveGrant {
        id: u32,
        keep_opened: bool,
        reply: oneshot::Sender<Result<(), String>>,
    },
    UnspentOnceGrants(oneshot::Sender<Result<HashSet<u32>, String>>),
    GrantIds(oneshot::Sender<Result<HashSet<u32>, String>>),
    Stats(oneshot::Sender<Result<KernelStats, String>>),
    /// Drop the kernel programs (detaching them) and end the thread.
    Shutdown,
}

/// A cloneable handle to the kernel thread.
#[derive(Clone)]
pub struct KernelHandle {
    commands: mpsc::Sender<Command>,
}

/// The kernel thread is gone (it only stops when the daemon shuts down).
#[derive(Debug, thiserror::Error)]
#[error("the daemon's kernel thread has stopped")]
pub struct KernelGone;

impl KernelHandle {
    /// Every tagged task now.
    pub async fn tagged_tasks(&self) -> Result<Result<Vec<TaggedTaskRecord>, String>, KernelGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::TaggedTasks(reply)).await?;
        answer.await.map_err(|_| KernelGone)
    }

    /// Tags every thread of the given processes.
    pub async fn tag(
        &self,
        processes: BTreeMap<u32, TaskTag>,
    ) -> Result<Result<(), String>, KernelGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Tag { processes, reply }).await?;
        answer.await.map_err(|_| KernelGone)
    }

    /// Puts a grant in force.
    pub async fn insert_grant(&self, grant: KernelGrant) -> Result<Result<(), String>, KernelGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::InsertGrant {
            grant: Box::new(grant),
            reply,
        })
        .await?;
        answer.await.map_err(|_| KernelGone)
    }

    /// Ends a grant at once; see `Kernel::remove_grant` for `keep_opened`.
    pub async fn remove_grant(
        &self,
        id: u32,
        keep_opened: bool,
    ) -> Result<Result<(), String>, KernelGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::RemoveGrant {
            id,
            keep_opened,
            reply,
        })
        .await?;
        answer.await.map_err(|_| KernelGone)
    }

    /// Ids of single-use grants the kernel has not spent.
    pub async fn unspent_once_grants(&self) -> Result<Result<HashSet<u32>, String>, KernelGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::UnspentOnceGrants(reply)).await?;
        answer.await.map_err(|_| KernelGone)
    }

    /// Ids of the grants with keys in the kernel.
    pub async fn grant_ids(&self) -> Result<Result<HashSet<u32>, String>, KernelGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::GrantIds(reply)).await?;
        answer.await.map_err(|_| KernelGone)
    }

    /// Every count and map size, for the metrics.
    pub async fn stats(&self) -> Result<Result<KernelStats, String>, KernelGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Stats(reply)).await?;
        answer.await.map_err(|_| KernelGone)
    }

    /// Puts `policy` in force as config generation `generation` (see `Kernel::apply_policy`)
    /// and tags the running processes `rules` match. Updates computed from other generations
    /// are refused as stale from then on.
    pub async fn apply_policy(
        &self,
        policy: Policy,
        rules: CompiledRules,
        generation: u64,
    ) -> Result<Result<usize, String>, KernelGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::ApplyPolicy {
            policy: Box::new(policy),
            rules: Box::new(rules),
            generation,
            reply,
        })
        .await?;
        answer.await.map_err(|_| KernelGone)
    }

    /// Replaces the file protection rules, computed from config generation `generation`;
    /// callable from a plain thread.
    pub fn set_file_tables_blocking(
        &self,
        tables: FileTables,
        generation: u64,
    ) -> Result<Result<Update, String>, KernelGone> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .blocking_send(Command::SetFileTables {
                tables: Box::new(tables),
                generation,
                reply,
            })
            .map_err(|_| KernelGone)?;
        answer.blocking_recv().map_err(|_| KernelGone)
    }

    /// Replaces the network allowlist, computed from config generation `generation`;
    /// callable from a plain thread.
    pub fn set_net_table_blocking(
        &self,
        table: NetTable,
        generation: u64,
    ) -> Result<Result<Update, String>, KernelGone> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .blocking_send(Command::SetNetTable {
                table: Box::new(table),
                generation,
                reply,
            })
            .map_err(|_| KernelGone)?;
        answer.blocking_recv().map_err(|_| KernelGone)
    }

    /// Detaches everything and ends the kernel thread, whoever else still holds a handle.
    pub fn shutdown_blocking(&self) {
        let _ = self.commands.blocking_send(Command::Shutdown);
    }

    async fn send(&self, command: Command) -> Result<(), KernelGone> {
        self.commands.send(command).await.map_err(|_| KernelGone)
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
                        let _ = reply.send(kernel.tagged_tasks().map_err(|e| error_chain(&e)));
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
                        rules,
                        generation,
                        reply,
                    } => {
                        // Whatever happens, the maps now hold (some of) this generation: older
                        // updates must not be written over it.
                        enforced = generation;
                        let result = kernel
                            .apply_policy(&policy)
                            .and_then(|()| adopt::adopt_existing(&mut kernel, &rules))
                            .map_err(|e| error_chain(&e));
                        let _ = reply.send(result);
                    }
                    Command::InsertGrant { grant, reply } => {
                        let _ =
                            reply.send(kernel.insert_grant(&grant).map_err(|e| error_chain(&e)));
                    }
                    Command::RemoveGrant {
                        id,
                        keep_opened,
                        reply,
                    } => {
                        let result = kernel.remove_grant(id, keep_opened);
                        let _ = reply.send(result.map_err(|e| error_chain(&e)));
                    }
                    Command::UnspentOnceGrants(reply) => {
                        let _ =
                            reply.send(kernel.unspent_once_grants().map_err(|e| error_chain(&e)));
                    }
                    Command::GrantIds(reply) => {
                        let _ = reply.send(kernel.grant_ids().map_err(|e| error_chain(&e)));
                    }
                    Command::Stats(reply) => {
                        let _ = reply.send(kernel.stats().map_err(|e| error_chain(&e)));
                    }
                    Command::Tag { processes, reply } => {
                        let result = adopt::tag_processes(&mut kernel, &processes)
                            .map_err(|e| error_chain(&e));
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
    write: impl FnOnce() -> Result<(), crate::kernel::KernelError>,
) -> Result<Update, String> {
    if generation != enforced {
        return Ok(Update::Stale);
    }
    write()
        .map(|()| Update::Applied)
        .map_err(|e| error_chain(&e))
}
