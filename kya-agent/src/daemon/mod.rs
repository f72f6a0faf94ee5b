//! The daemon: loads the kernel programs, applies the config, adopts running agents and
//! serves the control socket until it is told to stop.
mod event_reader;
mod file_watch;
pub mod grant_service;
pub mod kernel_task;
mod log_limit;
mod metrics_refresh;
mod net_refresh;
mod notify;

use std::{
    collections::HashSet,
    fs, io,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use aya::maps::{MapData, RingBuf};
use kya_common::programs::LSM_HOOKS;
use tokio::{net::UnixListener, signal::unix::SignalKind};

use self::{
    grant_service::{GrantHandle, GrantService, GrantThread},
    kernel_task::KernelHandle,
};
use crate::{
    config::{Config, ConfigErrors},
    control::server::{self, ServerState},
    error_chain,
    events::EventLog,
    files::tables::{FileTables, OwnFiles},
    grants::store::{Store, StoreError},
    kernel::{
        Kernel, KernelError, Lifetime, Takeover,
        support::{self, Unsupported},
    },
    metrics::{self, Metrics},
    network::table::NetTable,
    tagging::{adopt, rules},
};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(#[source] ConfigErrors),
    #[error("{0}")]
    Unsupported(#[source] Unsupported),
    #[error("applying the config to the kernel")]
    Kernel(#[source] KernelError),
    #[error("control socket {path}")]
    Socket {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("starting the async runtime")]
    Runtime(#[source] io::Error),
    #[error("grant state in {dir}")]
    State {
        dir: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("starting the grant service")]
    GrantService(#[source] io::Error),
    #[error(
        "metrics endpoint {address}: choose another address with --metrics ADDR:PORT, or \
         --metrics off"
    )]
    Metrics {
        address: std::net::SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// Where the daemon reads its config and serves its socket.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// `None` runs with the embedded default config.
    pub config: Option<PathBuf>,
    pub socket: PathBuf,
    /// Where grants, pending requests and the audit trail are kept.
    pub state_dir: PathBuf,
    /// The bpffs directory the programs and maps are pinned under.
    pub pin_dir: PathBuf,
    /// Where the Prometheus endpoint listens; `None` serves none.
    pub metrics: Option<std::net::SocketAddr>,
}

/// Runs the daemon in the foreground until SIGTERM or SIGINT. The kernel programs stay
/// attached (pinned) when it returns, and when it dies: only `unload` removes them.
pub fn run(options: &DaemonOptions) -> Result<(), DaemonError> {
    let (config, store) = prepare(options)?;
    let metrics_listener = bind_metrics(options)?;
    let (mut kernel, takeover) = load_kernel(options)?;
    let own = own_files(options);
    let applied = apply_config(&mut kernel, &config, &own)?;
    let metrics = Arc::new(Metrics::for_config(&config));
    for hook in LSM_HOOKS {
        // Loading attaches every hook or fails as a whole.
        metrics.set_enforcement_active(hook, true);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;
    let (handle, kernel_thread) = kernel_task::spawn(kernel);
    let config = Arc::new(config);
    let log = Arc::new(EventLog::default());
    let published_tables = Arc::new(RwLock::new(applied.file_tables.clone()));
    let hosts: net_refresh::HostNames = Arc::new(RwLock::new(applied.net_table.hosts.clone()));
    watch_files_and_hosts(
        &config,
        own,
        applied.file_tables,
        applied.net_table,
        &handle,
        &published_tables,
        &hosts,
    );
    let explainer = event_reader::Explainer {
        config: Arc::clone(&config),
        file_tables: Arc::clone(&published_tables),
        hosts,
    };
    let (grants, grant_thread) = start_grant_service(
        takeover.reused_maps,
        GrantService {
            store,
            config: Arc::clone(&config),
            kernel: handle.clone(),
            file_tables: published_tables,
            events: Arc::clone(&log),
            metrics: Arc::clone(&metrics),
            counts_changed: false,
            spent_unreported: HashSet::new(),
        },
        &runtime,
    )?;
    let state = Arc::new(ServerState {
        config: Arc::clone(&config),
        kernel: handle.clone(),
        events: Arc::clone(&log),
        grants: grants.clone(),
    });
    let result = runtime.block_on(async {
        let reader = tokio::spawn(event_reader::run(
            applied.events,
            explainer,
            log,
            grants,
            Arc::clone(&metrics),
        ));
        let refresher = tokio::spawn(metrics_refresh::run(
            handle.clone(),
            config,
            Arc::clone(&metrics),
        ));
        let endpoint = metrics_listener.map(|listener| {
            tokio::spawn(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => metrics::serve(listener, metrics).await,
                    Err(error) => tracing::error!(error = %error, "cannot serve metrics"),
                }
            })
        });
        let result = serve_until_signal(&options.socket, state).await;
        reader.abort();
        refresher.abort();
        if let Some(endpoint) = endpoint {
            endpoint.abort();
        }
        result
    });
    grant_thread.stop();
    drop(runtime);
    handle.shutdown_blocking();
    let _ = kernel_thread.join();
    let _ = fs::remove_file(&options.socket);
    tracing::info!(
        pins = %options.pin_dir.display(),
        "stopped; enforcement continues until `kya-agent unload`"
    );
    result
}

/// Binds the metrics endpoint's address early, so a taken port stops the start with a clear
/// error before anything is loaded.
fn bind_metrics(options: &DaemonOptions) -> Result<Option<std::net::TcpListener>, DaemonError> {
    options
        .metrics
        .map(|address| {
            std::net::TcpListener::bind(address)
                .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
                .map_err(|source| DaemonError::Metrics { address, source })
        })
        .transpose()
}

/// kya's own files, which every agent is refused.
fn own_files(options: &DaemonOptions) -> OwnFiles {
    OwnFiles {
        state_dir: options.state_dir.clone(),
        config: options
            .config
            .as_deref()
            .map(|path| std::path::absolute(path).unwrap_or_else(|_| path.to_owned())),
        pin_dir: options.pin_dir.clone(),
    }
}

/// Loads and attaches the programs, pinned, taking over what an earlier daemon pinned.
fn load_kernel(options: &DaemonOptions) -> Result<(Kernel, Takeover), DaemonError> {
    let (mut kernel, takeover) = Kernel::load(&Lifetime::Pinned(options.pin_dir.clone()))
        .map_err(|error| DaemonError::Unsupported(support::explain(&error)))?;
    if takeover.reused_maps {
        kernel.clear_adopt_requests().map_err(DaemonError::Kernel)?;
    }
    tracing::info!(
        pins = %options.pin_dir.display(),
        took_over = takeover.reused_maps,
        retired_pins = takeover.retired_pins,
        "kernel programs attached and pinned"
    );
    Ok((kernel, takeover))
}

/// What applying the config to freshly loaded programs leaves for the running daemon.
struct Applied {
    file_tables: FileTables,
    net_table: NetTable,
    events: RingBuf<MapData>,
}

/// Writes the config into the kernel maps in the order that never opens a gap: file and
/// network rules and counters before any task is tagged, then the match rules, then the
/// processes already running.
fn apply_config(
    kernel: &mut Kernel,
    config: &Config,
    own: &OwnFiles,
) -> Result<Applied, DaemonError> {
    let file_tables = file_watch::resolve_now(config, own);
    kernel
        .set_file_tables(&file_tables)
        .map_err(DaemonError::Kernel)?;
    let net_table = net_refresh::compile_now(config);
    kernel
        .set_net_table(&net_table)
        .map_err(DaemonError::Kernel)?;
    let events = kernel.take_events().map_err(DaemonError::Kernel)?;
    let agent_ids: Vec<u32> = config.agents().iter().map(|a| a.id().get()).collect();
    kernel
        .create_counters(&agent_ids)
        .map_err(DaemonError::Kernel)?;
    kernel
        .create_event_budgets(&agent_ids)
        .map_err(DaemonError::Kernel)?;
    let compiled = rules::compile(config);
    for rule in &compiled.resolved {
        if let Err(problem) = &rule.outcome {
            tracing::warn!(agent = %rule.agent, kind = %rule.kind, value = %rule.value, problem = %problem, "rule matches nothing");
        }
    }
    kernel
        .set_rules(&compiled.kernel)
        .map_err(DaemonError::Kernel)?;
    let adopted = adopt::adopt_existing(kernel, &compiled).map_err(DaemonError::Kernel)?;
    tracing::info!(
        config = %config.origin().display(),
        agents = config.agents().len(),
        adopted,
        protected_objects = file_tables.inodes.len(),
        protected_paths = file_tables.names.len(),
        "enforcing"
    );
    Ok(Applied {
        file_tables,
        net_table,
        events,
    })
}

/// Starts the threads that keep protected files and host names current.
fn watch_files_and_hosts(
    config: &Arc<Config>,
    own: OwnFiles,
    file_tables: FileTables,
    net_table: NetTable,
    kernel: &KernelHandle,
    published_tables: &Arc<RwLock<FileTables>>,
    hosts: &net_refresh::HostNames,
) {
    let watcher = file_watch::spawn(
        Arc::clone(config),
        own,
        file_tables,
        kernel.clone(),
        Arc::clone(published_tables),
    );
    if let Err(error) = watcher {
        tracing::error!(error = %error, "cannot watch protected files; new ones are protected by path only");
    }
    if let Err(error) = net_refresh::spawn(
        Arc::clone(config),
        net_table,
        kernel.clone(),
        Arc::clone(hosts),
    ) {
        tracing::error!(error = %error, "cannot refresh host names; their addresses stay as resolved at start");
    }
}

/// Everything that can fail before any kernel program is loaded: the config, the host's
/// support, the grant store, and the control socket's directory (which exists before the file
/// tables are resolved, so agents are refused the socket by its path from the first moment).
fn prepare(options: &DaemonOptions) -> Result<(Config, Store), DaemonError> {
    let config = match &options.config {
        Some(path) => Config::load(path).map_err(DaemonError::Config)?,
        None => Config::embedded_default(),
    };
    support::check_preconditions().map_err(DaemonError::Unsupported)?;
    let store = Store::open(&options.state_dir).map_err(|source| DaemonError::State {
        dir: options.state_dir.clone(),
        source,
    })?;
    if let Some(dir) = options.socket.parent() {
        fs::create_dir_all(dir).map_err(|source| DaemonError::Socket {
            path: options.socket.clone(),
            source,
        })?;
    }
    Ok((config, store))
}

/// Restores the stored grants into the kernel, then runs the grant service.
fn start_grant_service(
    reused_maps: bool,
    mut service: GrantService,
    runtime: &tokio::runtime::Runtime,
) -> Result<(GrantHandle, GrantThread), DaemonError> {
    runtime.block_on(service.restore(reused_maps));
    service
        .spawn(runtime.handle().clone())
        .map_err(DaemonError::GrantService)
}

async fn serve_until_signal(socket: &Path, state: Arc<ServerState>) -> Result<(), DaemonError> {
    let listener = bind(socket).map_err(|source| DaemonError::Socket {
        path: socket.to_owned(),
        source,
    })?;
    tracing::info!(socket = %socket.display(), "control socket ready");
    let mut terminate = tokio::signal::unix::signal(SignalKind::terminate()).map_err(|source| {
        DaemonError::Socket {
            path: socket.to_owned(),
            source,
        }
    })?;
    // Programs attached, config applied, socket bound (and SIGTERM handled, so a stop right
    // after this still detaches in order): units ordered after this one start under
    // enforcement.
    notify::ready();
    let result = tokio::select! {
        result = server::serve(listener, state) => result.map_err(|source| DaemonError::Socket {
            path: socket.to_owned(),
            source,
        }),
        _ = terminate.recv() => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    notify::stopping();
    result
}

/// Binds the control socket, replacing a stale socket file left by a daemon that died.
fn bind(socket: &Path) -> io::Result<UnixListener> {
    if let Some(parent) = socket.parent() {
        fs::create_dir_all(parent)?;
    }
    if std::os::unix::net::UnixStream::connect(socket).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another kya-agent is serving this socket",
        ));
    }
    match fs::remove_file(socket) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let listener = UnixListener::bind(socket)?;
    // Every local user may ask; the daemon decides per request from the caller's credentials.
    fs::set_permissions(socket, fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

/// Formats a daemon error for the one line users see.
#[must_use]
pub fn describe(error: &DaemonError) -> String {
    match error {
        DaemonError::Config(errors) => errors.to_string(),
        DaemonError::Unsupported(reason) => reason.to_string(),
        DaemonError::State { dir, source } => {
            format!("grant state in {}: {}", dir.display(), error_chain(source))
        }
        other => error_chain(other),
    }
}
