//! `keycard serve`: run the authorization server until SIGINT or SIGTERM.
//!
//! [`run`] turns [`ServeArgs`] and the configuration file into `Settings` and listener
//! options, binds the listener (and the metrics listener, when configured), opens the store and
//! serves `keycard_server::router` with `keycard_serve`'s limits (`keycard demo` reuses the
//! arguments and helpers, `super::demo`). [`init_logging`] sets up tracing for every long-running command.
//! [`shutdown_signal`] is SIGINT or SIGTERM.
//!
//! The settings, the listener options and the master key are checked before the store is
//! opened, so a bad configuration fails without touching the database. Shutdown is graceful:
//! on a signal both listeners stop accepting and let in-flight requests finish, for at most the
//! configured grace. `/metrics` is only ever served on the metrics listener.
//!
//! Not here: the demo (`super::demo`), how flags, environment and file combine
//! into settings (`crate::config`, `crate::listen`), and `keycard config-check`
//! (`super::config_check`).

use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use keycard_server::{App, MasterKey, Settings, SystemClock};
use keycard_store::Store;

use crate::cmd::open_store;
use crate::config;
use crate::listen::{self, ListenArgs};

#[derive(Args, Debug, Clone, Default)]
pub(crate) struct ServeArgs {
    /// Listen address.
    #[arg(long, env = "KEYCARD_ADDR")]
    pub(crate) addr: Option<String>,
    /// Issuer URL (default http://<addr>).
    #[arg(long, env = "KEYCARD_ISSUER")]
    pub(crate) issuer: Option<String>,
    /// Algorithm for newly generated signing keys: RS256, ES256 or EdDSA.
    #[arg(long, env = "KEYCARD_SIGNING_ALG")]
    pub(crate) signing_alg: Option<String>,
    /// Access-token lifetime in seconds (APIs may set their own).
    #[arg(long, env = "KEYCARD_ACCESS_TOKEN_TTL")]
    pub(crate) access_token_ttl: Option<i64>,
    /// Refresh-token lifetime in seconds.
    #[arg(long, env = "KEYCARD_REFRESH_TOKEN_TTL")]
    pub(crate) refresh_token_ttl: Option<i64>,
    /// Browser session lifetime in seconds.
    #[arg(long, env = "KEYCARD_SESSION_TTL")]
    pub(crate) session_ttl: Option<i64>,
    /// Log format: text or json.
    #[arg(long, env = "KEYCARD_LOG_FORMAT")]
    pub(crate) log_format: Option<String>,
    /// Allow an http issuer on a non-loopback host (development only).
    #[arg(long)]
    pub(crate) allow_http_issuer: bool,
    /// Do not apply database migrations on start (run `keycard migrate` instead).
    #[arg(long, env = "KEYCARD_NO_MIGRATE")]
    pub(crate) no_migrate: bool,
    /// A grant's absolute lifetime in seconds: refresh tokens rotate, never past it.
    #[arg(long, env = "KEYCARD_GRANT_TTL")]
    pub(crate) grant_ttl: Option<i64>,
    /// How long a device code lives, in seconds (RFC 8628; default 600).
    #[arg(long, env = "KEYCARD_DEVICE_CODE_TTL")]
    pub(crate) device_code_ttl: Option<i64>,
    /// The polling interval devices are told to keep, in seconds (1 to 60; default 5).
    #[arg(long, env = "KEYCARD_DEVICE_POLL_INTERVAL")]
    pub(crate) device_poll_interval: Option<i64>,
    /// Rotate the signing keys every this many days (0: only by `keycard keys rotate`).
    #[arg(long, env = "KEYCARD_KEY_ROTATION_DAYS")]
    pub(crate) key_rotation_days: Option<i64>,
    /// Sign-ins one client address may start per minute (new authorization requests).
    #[arg(long, env = "KEYCARD_TXN_PER_MINUTE")]
    pub(crate) txn_per_minute: Option<u32>,
    #[command(flatten)]
    pub(crate) listen: ListenArgs,
}

/// Connections the metrics listener serves at once.
const METRICS_MAX_CONNECTIONS: usize = 64;

/// `keycard serve`.
pub(crate) async fn run(
    db_url: &str,
    file: &config::FileConfig,
    args: ServeArgs,
) -> anyhow::Result<()> {
    init_logging(
        args.log_format
            .as_deref()
            .or(file.log_format.as_deref())
            .unwrap_or("text"),
    );
    let settings = config::settings(file, &args)?;
    let addr = config::addr(file, &args);
    let options = listen::serve_options(file, &args.listen)?;
    let master = config::master_key(file, db_url)?;
    let listener = bind(&addr).await?;
    let metrics = match listen::metrics_addr(file, &args.listen) {
        Some(a) => Some((bind(&a).await?, a)),
        None => None,
    };
    let store = open_store(db_url, !args.no_migrate).await?;
    let listeners = Listeners {
        main: listener,
        addr,
        metrics,
        options,
    };
    run_server(store, settings, master, listeners).await
}

async fn bind(addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}

/// The bound listeners and the limits they serve with.
#[derive(Debug)]
struct Listeners {
    main: tokio::net::TcpListener,
    addr: String,
    metrics: Option<(tokio::net::TcpListener, String)>,
    options: keycard_serve::ServeOptions,
}

/// Logs to stderr, filtered by `KEYCARD_LOG` or else `RUST_LOG`, as text or as JSON lines.
pub(crate) fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYCARD_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_env("RUST_LOG"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        b.json().flatten_event(true).with_current_span(true).init();
    } else {
        b.init();
    }
}

async fn run_server<S: Store>(
    store: S,
    settings: Settings,
    master: MasterKey,
    listeners: Listeners,
) -> anyhow::Result<()> {
    let clock: Arc<dyn keycard_protocol::Clock> = Arc::new(SystemClock);
    let app = App::new(store, settings.clone(), master, clock).await?;
    keycard_server::metrics_handle();
    keycard_server::spawn_background(&app);
    let Listeners {
        main,
        addr,
        metrics,
        options,
    } = listeners;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let closing = app.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        closing.begin_shutdown();
        let _ = stop.send(true);
    });
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let metrics_task = metrics.map(|(listener, metrics_addr)| {
        tracing::info!(addr = %metrics_addr, "metrics listening");
        // A scraper needs a connection or two. The main listener's cap already leaves only a
        // small headroom of file descriptors, and this listener must not eat it.
        let metrics_options = keycard_serve::ServeOptions {
            max_connections: options.max_connections.min(METRICS_MAX_CONNECTIONS),
            ..options.clone()
        };
        tokio::spawn(keycard_serve::serve(
            listener,
            keycard_server::metrics_router(),
            metrics_options,
            until_stopped(stopped.clone()),
        ))
    });
    tracing::info!(
        addr = %addr,
        issuer = %settings.issuer.as_str(),
        limits = %crate::listen::describe(&options, None),
        "keycard listening"
    );
    let router = keycard_server::router(app);
    keycard_serve::serve(main, router, options, until_stopped(stopped)).await;
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
