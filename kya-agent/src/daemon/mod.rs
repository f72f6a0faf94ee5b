//! The daemon: loads the kernel programs, applies the config, adopts running agents and
//! serves the control socket until it is told to stop.
mod adopt;
mod control_server;
mod event_reader;
mod file_watch;
pub mod grant_service;
pub mod kernel_task;
pub mod live_config;
mod log_limit;
mod memory;
mod metrics_refresh;
mod net_refresh;
mod notify;
mod owner_watch;
mod pidfd;
pub mod reload;

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
    control_server::ServerState,
    grant_service::{GrantHandle, GrantService, GrantThread},
    kernel_task::KernelHandle,
    live_config::LiveConfig,
    reload::Reloader,
};
use crate::{
    approvals::totp::Secrets,
    config::{Config, ConfigErrors},
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
    policy::{Policy, PolicyTooLarge},
};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(#[source] ConfigErrors),
    #[error("{0}")]
    Unsupported(#[source] Unsupported),
    #[error("applying the config to the kernel")]
    Kernel(#[source] KernelError),
    #[error("{0}")]
    TooLarge(#[source] PolicyTooLarge),
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
    #[error("TOTP secrets")]
    Totp {
        #[source]
        source: crate::approvals::ProofError,
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
    let (config, store, totp) = prepare(options)?;
    let metrics_listener = bind_metrics(options)?;
    let (mut kernel, takeover) = load_kernel(options)?;
    let own = own_files(options);
    let applied = apply_config(&mut kernel, &config, &own)?;
    let hooks = kernel.enforcing_hooks().to_vec();
    let metrics = enforcing_metrics(&config, &hooks);
    let runtime = runtime()?;
    let (handle, kernel_thread) = kernel_task::spawn(kernel);
    let config = Arc::new(LiveConfig::new(config));
    let log = Arc::new(EventLog::default());
    let published_tables = Arc::new(RwLock::new(applied.file_tables.clone()));
    let hosts: net_refresh::HostNames = Arc::new(RwLock::new(applied.net_table.hosts.clone()));
    let watched = file_watch::Watched {
        live: Arc::clone(&config),
        own: own.clone(),
        kernel: handle.clone(),
        published: Arc::clone(&published_tables),
        metrics: Arc::clone(&metrics),
    };
    let watch = watch_files_and_hosts(
        watched,
        applied.file_tables,
        applied.net_table,
        &handle,
        &hosts,
    );
    let service = grant_service(
        (store, totp),
        &config,
        &handle,
        &published_tables,
        &log,
        &metrics,
    );
    let (grants, grant_thread) = start_grant_service(takeover.reused_maps, service, &runtime)?;
    let reloader = Arc::new(Reloader {
        path: options.config.clone(),
        own,
        live: Arc::clone(&config),
        kernel: handle.clone(),
        file_tables: Arc::clone(&published_tables),
        hosts: Arc::clone(&hosts),
        metrics: Arc::clone(&metrics),
        watch,
        serial: tokio::sync::Mutex::new(()),
        grants: grants.clone(),
        owner_check: Arc::new(tokio::sync::Notify::new()),
    });
    let owners = owner_watch::OwnerWatch::new(&reloader, Arc::clone(&metrics));
    let explainer = event_reader::Explainer {
        config: Arc::clone(&config),
        file_tables: Arc::clone(&published_tables),
        hosts,
    };
    let state = Arc::new(ServerState {
        config: Arc::clone(&config),
        kernel: handle.clone(),
        events: Arc::clone(&log),
        grants: grants.clone(),
        reloader,
        hooks,
        watchers: Arc::new(tokio::sync::Semaphore::new(control_server::MAX_WATCHERS)),
    });
    let result = runtime.block_on(async {
        let tasks = [
            tokio::spawn(event_reader::run(
                applied.events,
                explainer,
                log,
                grants,
                Arc::clone(&metrics),
            ))
            .abort_handle(),
            tokio::spawn(metrics_refresh::run(
                handle.clone(),
                config,
                Arc::clone(&metrics),
            ))
            .abort_handle(),
            tokio::spawn(owners.run()).abort_handle(),
        ];
        let endpoint =
            metrics_listener.map(|listener| serve_metrics(listener, metrics).abort_handle());
        let result = serve_until_signal(&options.socket, state).await;
        for task in tasks.iter().chain(&endpoint) {
            task.abort();
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

fn runtime() -> Result<tokio::runtime::Runtime, DaemonError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)
}

/// The metrics of `config`, with the hooks in `enforcing` enforcing: loading attaches every
/// hook (but the optional ones the kernel lacks, which have no series) or fails as a whole.
fn enforcing_metrics(config: &Config, enforcing: &[&'static str]) -> Arc<Metrics> {
    let metrics = Arc::new(Metrics::for_config(config));
    for hook in LSM_HOOKS {
        let active = enforcing.contains(&hook.name);
        if hook.optional && !active {
            metrics.forget_enforcement(hook.name);
        } else {
            metrics.set_enforcement_active(hook.name, active);
        }
    }
    metrics
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
    // The kernel's own record of what this process executes, whatever path started it.
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/usr/bin/kya-agent"));
    OwnFiles::new(
        options.state_dir.clone(),
        options
            .config
            .as_deref()
            .map(|path| std::path::absolute(path).unwrap_or_else(|_| path.to_owned())),
        options.pin_dir.clone(),
        &exe,
    )
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

/// Puts the config's policy in force (over whatever an earlier daemon left in the pinned maps,
/// tightening first), then tags the processes already running.
fn apply_config(
    kernel: &mut Kernel,
    config: &Config,
    own: &OwnFiles,
) -> Result<Applied, DaemonError> {
    let policy = Policy::compile(config, own);
    policy.report().log_problems();
    policy.check_fits().map_err(DaemonError::TooLarge)?;
    kernel.apply_policy(&policy).map_err(DaemonError::Kernel)?;
    let events = kernel.take_events().map_err(DaemonError::Kernel)?;
    let adopted = adopt::adopt_existing(kernel, &policy.rules).map_err(DaemonError::Kernel)?;
    tracing::info!(
        config = %config.origin().display(),
        agents = config.agents().len(),
        adopted,
        protected_objects = policy.file_tables.inodes.len(),
        protected_paths = policy.file_tables.names.len(),
        "enforcing"
    );
    Ok(Applied {
        file_tables: policy.file_tables,
        net_table: policy.net_table,
        events,
    })
}

/// Serves the Prometheus endpoint on `listener` until aborted.
fn serve_metrics(
    listener: std::net::TcpListener,
    metrics: Arc<Metrics>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => metrics::serve(listener, metrics).await,
            Err(error) => tracing::error!(error = %error, "cannot serve metrics"),
        }
    })
}

/// Starts the threads that keep protected files and host names current; returns the file
/// watcher's handle for new directories, if it could start.
fn watch_files_and_hosts(
    watched: file_watch::Watched,
    file_tables: FileTables,
    net_table: NetTable,
    kernel: &KernelHandle,
    hosts: &net_refresh::HostNames,
) -> Option<file_watch::WatchDirs> {
    let config = Arc::clone(&watched.live);
    let watcher = file_watch::spawn(watched, file_tables);
    let watch = watcher
        .inspect_err(|error| {
            tracing::error!(error = %error, "cannot watch protected files; new ones are protected by path only");
        })
        .ok();
    if let Err(error) = net_refresh::spawn(config, net_table, kernel.clone(), Arc::clone(hosts)) {
        tracing::error!(error = %error, "cannot refresh host names; their addresses stay as resolved at start");
    }
    watch
}

/// Everything that can fail before any kernel program is loaded: the config, the host's
/// support, the grant store, and the control socket's directory (which exists before the file
/// tables are resolved, so agents are refused the socket by its path from the first moment).
fn prepare(options: &DaemonOptions) -> Result<(Config, Store, Secrets), DaemonError> {
    memory::at_start();
    let config = match &options.config {
        Some(path) => Config::load(path).map_err(DaemonError::Config)?,
        None => Config::embedded_default(),
    };
    crate::network::metadata::log_warnings(&config);
    support::check_preconditions().map_err(DaemonError::Unsupported)?;
    let store = Store::open(&options.state_dir).map_err(|source| DaemonError::State {
        dir: options.state_dir.clone(),
        source,
    })?;
    let totp = Secrets::open(&options.state_dir.join(crate::paths::TOTP_FILE))
        .map_err(|source| DaemonError::Totp { source })?;
    if let Some(dir) = options.socket.parent() {
        fs::create_dir_all(dir).map_err(|source| DaemonError::Socket {
            path: options.socket.clone(),
            source,
        })?;
    }
    // Contained agents stay contained across a restart: their allowlists are suspended in the
    // first policy the kernel gets.
    let contained: Vec<String> = store.state().contained.keys().cloned().collect();
    let config = config.with_suspended(contained.iter().map(String::as_str));
    Ok((config, store, totp))
}

/// The grant service of a starting daemon.
fn grant_service(
    (store, totp): (Store, Secrets),
    config: &Arc<LiveConfig>,
    kernel: &KernelHandle,
    file_tables: &Arc<RwLock<FileTables>>,
    events: &Arc<EventLog>,
    metrics: &Arc<Metrics>,
) -> GrantService {
    GrantService {
        store,
        config: Arc::clone(config),
        kernel: kernel.clone(),
        file_tables: Arc::clone(file_tables),
        events: Arc::clone(events),
        metrics: Arc::clone(metrics),
        counts_changed: false,
        spent_unreported: HashSet::new(),
        pending_changed: tokio::sync::watch::Sender::new(0),
        approvals: grant_service::Approvals::new(totp),
    }
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
    let signal = |kind| {
        tokio::signal::unix::signal(kind).map_err(|source| DaemonError::Socket {
            path: socket.to_owned(),
            source,
        })
    };
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    // Programs attached, config applied, socket bound (and SIGTERM handled, so a stop right
    // after this still detaches in order): units ordered after this one start under
    // enforcement.
    notify::ready();
    memory::after_start_up();
    let reloader = Arc::clone(&state.reloader);
    let reload_on_hangup = async move {
        while hangup.recv().await.is_some() {
            // The outcome is logged by the reload itself (or here, with the errors).
            if let Err(error) = reloader.reload().await {
                tracing::error!(error = %error, "reload on SIGHUP refused");
            }
        }
    };
    let result = tokio::select! {
        result = control_server::serve(listener, state) => result.map_err(|source| DaemonError::Socket {
            path: socket.to_owned(),
            source,
        }),
        _ = terminate.recv() => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
        () = reload_on_hangup => Ok(()),
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
