//! The daemon's side of the control socket. The caller is identified by the kernel (peer
//! credentials), never by anything it says.
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use kya_common::{
    programs::LSM_HOOKS,
    tag::{MatchReason, TaggedTaskRecord, TaskTag, origin},
};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::{UnixListener, UnixStream},
    sync::Semaphore,
};

use super::{
    grant_service::{GrantHandle, containment::Internal},
    kernel_task::{KernelCallError, KernelHandle},
    live_config::LiveConfig,
    reload::Reloader,
};
use crate::{
    control::protocol::{AgentStatus, HookState, MAX_REQUEST_BYTES, Request, Response, StatusView},
    error_chain,
    events::EventLog,
    grants::authority::Caller,
    tagging::listing,
};

/// `kya watch` connections served at once; more are refused rather than let callers make the
/// daemon hold an unbounded number of followers.
pub const MAX_WATCHERS: usize = 32;

/// Shortest time between two lists sent to one `kya watch`: an agent that repeats a refused
/// operation in a tight loop changes its request's count each time, and the follower needs the
/// latest list, not every step.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// How long a `kya watch` caller may leave a list unread before it is dropped: a follower that
/// stopped reading costs the daemon one task and one socket buffer, not more.
const WATCH_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What request handlers share.
pub struct ServerState {
    pub config: Arc<LiveConfig>,
    pub kernel: KernelHandle,
    pub events: Arc<EventLog>,
    pub grants: GrantHandle,
    pub reloader: Arc<Reloader>,
    /// The LSM hooks with an attached program (`Kernel::enforcing_hooks`).
    pub hooks: Vec<&'static str>,
    /// Room for `kya watch` connections ([`MAX_WATCHERS`]).
    pub watchers: Arc<Semaphore>,
}

/// Accepts connections until the listener fails; each connection carries one request.
pub async fn serve(listener: UnixListener, state: Arc<ServerState>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            if let Err(error) = handle_connection(stream, &state).await {
                tracing::debug!(error = %error, "control connection ended with an error");
            }
        });
    }
}

async fn handle_connection(mut stream: UnixStream, state: &ServerState) -> std::io::Result<()> {
    let peer = stream.peer_cred()?;
    let mut line = Vec::new();
    let mut reader = BufReader::new((&mut stream).take(MAX_REQUEST_BYTES as u64 + 1));
    reader.read_until(b'\n', &mut line).await?;
    let response = if line.len() > MAX_REQUEST_BYTES {
        error(format!(
            "request longer than {MAX_REQUEST_BYTES} bytes refused; send one JSON object per line"
        ))
    } else {
        match serde_json::from_slice::<Request>(&line) {
            Err(parse) => error(format!(
                "malformed request ({parse}); expected one JSON object per line such as \
                 {{\"request\":\"ps\"}}"
            )),
            Ok(request) => match peer.pid().and_then(|pid| u32::try_from(pid).ok()) {
                None => error("cannot identify the calling process".to_owned()),
                Some(pid) if request == (Request::Watch {}) => {
                    return watch_pending(stream, Caller::new(pid, peer.uid()), state).await;
                }
                Some(pid) => handle_request(request, Caller::new(pid, peer.uid()), state).await,
            },
        }
    };
    send(&mut stream, &response).await
}

async fn send(stream: &mut UnixStream, response: &Response) -> std::io::Result<()> {
    let mut answer = serde_json::to_vec(response).expect("responses always serialize");
    answer.push(b'\n');
    stream.write_all(&answer).await
}

/// `kya watch`: the pending list now, then again after each change, until the caller hangs up
/// (or sends anything), stops reading, or the grant service stops. Changes are not queued:
/// the watch channel holds only "something changed", and each list sent is the whole current
/// one, so a slow caller resynchronises by itself and never holds up the grant service.
async fn watch_pending(
    mut stream: UnixStream,
    who: Caller,
    state: &ServerState,
) -> std::io::Result<()> {
    let refusal = match state.kernel.tagged_tasks().await {
        Ok(records) => agent_refusal(who.pid, &records, state),
        Err(failed) => Some(kernel_error("listing tagged tasks failed", &failed)),
    };
    if let Some(refusal) = refusal {
        return send(&mut stream, &refusal).await;
    }
    let Ok(_room) = Arc::clone(&state.watchers).try_acquire_owned() else {
        let busy = error(format!(
            "kya-agent already serves {MAX_WATCHERS} `kya watch` callers; close one and try again"
        ));
        return send(&mut stream, &busy).await;
    };
    let mut changes = state.grants.pending_changes();
    let (mut from_caller, mut to_caller) = stream.split();
    let mut ignored = [0_u8; 64];
    loop {
        changes.borrow_and_update();
        let list = state.grants.call(Request::Pending {}, who.clone()).await;
        let ended = matches!(list, Response::Error { .. });
        let mut line = serde_json::to_vec(&list).expect("responses always serialize");
        line.push(b'\n');
        match tokio::time::timeout(WATCH_WRITE_TIMEOUT, to_caller.write_all(&line)).await {
            Ok(Ok(())) if !ended => {}
            Ok(result) => return result,
            Err(_) => {
                tracing::info!(pid = who.pid, "kya watch caller stopped reading; dropped");
                return Ok(());
            }
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return Ok(()) },
            // The caller sends nothing after its request: end of file or any byte ends it.
            _ = from_caller.read(&mut ignored) => return Ok(()),
        }
        tokio::time::sleep(WATCH_INTERVAL).await;
    }
}

/// The answer for a tagged caller: agents cannot use the control socket. (The kernel refuses
/// them the socket already; this holds where it could not, such as a socket path it does not
/// protect.)
fn agent_refusal(
    caller: u32,
    records: &[TaggedTaskRecord],
    state: &ServerState,
) -> Option<Response> {
    let record = records.iter().find(|record| record.tgid == caller)?;
    let agent = listing::describe(&[*record], &state.config.current())
        .pop()
        .map_or_else(String::new, |process| process.agent);
    tracing::warn!(pid = caller, agent = %agent, "tagged process refused on the control socket");
    Some(error(format!(
        "process {caller} is agent {agent}: agent processes cannot use the control socket"
    )))
}

fn error(message: String) -> Response {
    Response::Error { message }
}

/// What the caller reads when the kernel thread could not do `what`.
fn kernel_error(what: &str, failed: &KernelCallError) -> Response {
    match failed {
        KernelCallError::Gone => error(failed.to_string()),
        KernelCallError::Kernel(_) => error(format!("{what}: {}", error_chain(failed))),
    }
}

async fn handle_request(request: Request, who: Caller, state: &ServerState) -> Response {
    let caller = who.pid;
    let records = match state.kernel.tagged_tasks().await {
        Ok(records) => records,
        Err(failed) => return kernel_error("listing tagged tasks failed", &failed),
    };
    if let Some(refusal) = agent_refusal(caller, &records, state) {
        return refusal;
    }
    match request {
        Request::Ps {} => Response::Processes {
            processes: listing::describe(&records, &state.config.current()),
        },
        Request::Run { agent } => run(&agent, caller, state).await,
        Request::Status {} => status(&records, who, state).await,
        Request::Events { after } => Response::Events {
            events: state.events.since(after),
        },
        Request::Reload {} => reload(&who, state).await,
        Request::Watch {} => error("a watch is served on its own connection".to_owned()),
        Request::Pending {}
        | Request::Grants {}
        | Request::Approve { .. }
        | Request::Deny { .. }
        | Request::Grant { .. }
        | Request::Revoke { .. }
        | Request::Challenge { .. }
        | Request::TotpEnroll { .. }
        | Request::TotpRemove { .. } => state.grants.call(request, who).await,
    }
}

/// `kya status`: the daemon's own view, from the kernel and the grant service.
async fn status(records: &[TaggedTaskRecord], who: Caller, state: &ServerState) -> Response {
    let events_lost = match state.kernel.stats().await {
        Ok(stats) => stats.events_lost,
        Err(failed) => return kernel_error("reading the kernel's counts failed", &failed),
    };
    let Response::Grants { grants } = state.grants.call(Request::Grants {}, who.clone()).await
    else {
        return error("the grant service did not list its grants".to_owned());
    };
    let Response::Pending { requests } = state.grants.call(Request::Pending {}, who).await else {
        return error("the grant service did not list its requests".to_owned());
    };
    let contained = state
        .grants
        .internal(|reply| Internal::Contained { reply })
        .await
        .unwrap_or_default();
    let config = state.config.current();
    let agents = config
        .agents()
        .iter()
        .map(|agent| {
            let processes: BTreeSet<u32> = records
                .iter()
                .filter(|record| record.tag.agent == agent.id().get())
                .map(|record| record.tgid)
                .collect();
            AgentStatus {
                name: agent.name().to_owned(),
                tagged_processes: processes.len() as u64,
                grants: grants.iter().filter(|g| g.agent == agent.name()).count(),
                pending: requests.iter().filter(|r| r.agent == agent.name()).count(),
                contained: contained
                    .get(agent.name())
                    .map(|containment| containment.explain(agent.name())),
            }
        })
        .collect();
    Response::Status {
        status: StatusView {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            config: config.origin().display().to_string(),
            // Loading attaches every hook or fails as a whole. An optional hook the kernel
            // lacks is not listed: an older hook covers its operations, nothing is off.
            hooks: LSM_HOOKS
                .iter()
                .filter(|hook| !hook.optional || state.hooks.contains(&hook.name))
                .map(|hook| HookState {
                    hook: hook.name.to_owned(),
                    enforcing: state.hooks.contains(&hook.name),
                })
                .collect(),
            agents,
            grants: grants.len(),
            pending: requests.len(),
            events_lost: events_lost.ring_buffer,
            events_over_budget: events_lost.agent_budget,
        },
    }
}

async fn run(agent_name: &str, caller: u32, state: &ServerState) -> Response {
    let config = state.config.current();
    let Some(agent) = config.agent_by_name(agent_name) else {
        let known: Vec<&str> = config
            .agents()
            .iter()
            .map(crate::config::Agent::name)
            .collect();
        return error(format!(
            "unknown agent `{agent_name}`; agents in {}: {}",
            config.origin().display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ));
    };
    let tag = TaskTag::new(agent.id().get(), MatchReason::Run, origin::MATCHED);
    if let Err(failed) = state.kernel.tag(BTreeMap::from([(caller, tag)])).await {
        return kernel_error(&format!("tagging process {caller} failed"), &failed);
    }
    // Confirm from the kernel itself: the caller must not run its command untagged.
    let confirmed = match state.kernel.tagged_tasks().await {
        Ok(records) => records
            .iter()
            .any(|record| record.tgid == caller && record.tag.agent == tag.agent),
        _ => false,
    };
    if !confirmed {
        return error(format!(
            "process {caller} could not be tagged as {agent_name}; the command was not started"
        ));
    }
    tracing::info!(
        pid = caller,
        agent = agent_name,
        "process tagged by kya run"
    );
    Response::Tagged {
        pid: caller,
        agent: agent_name.to_owned(),
    }
}

/// `kya reload`: only root may change the policy, as only root may write the config file.
async fn reload(who: &Caller, state: &ServerState) -> Response {
    if who.uid != 0 {
        return error(format!(
            "{} (uid {}) may not reload the config; run `kya reload` as root (or send SIGHUP \
             to kya-agent)",
            who.user, who.uid
        ));
    }
    match state.reloader.reload().await {
        Ok(reloaded) => Response::Reloaded {
            config: reloaded.config.display().to_string(),
            generation: reloaded.generation,
            agents: reloaded.agents,
            adopted: reloaded.adopted,
        },
        Err(refused) => {
            tracing::warn!(error = %refused, "reload refused");
            error(refused.to_string())
        }
    }
}
