//! `keycard serve` and `keycard demo`: run the authorization server until SIGINT or SIGTERM.
//!
//! [`run`] turns [`ServeArgs`] and the configuration file into `Settings`, binds the listener,
//! opens the store and serves `keycard_server::router`; for `keycard demo` it seeds the demo
//! data first. [`init_logging`] sets up tracing for every long-running command.
//!
//! The settings and the master key are checked before the store is opened, so a bad
//! configuration fails without touching the database. Shutdown is graceful: on a signal the
//! server stops accepting and lets in-flight requests finish.
//!
//! Not here: what the demo seeds (`super::demo`), how flags, environment and file combine
//! into settings (`crate::config`), and `keycard config-check` (`super::config_check`).

use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use keycard_server::{App, MasterKey, Settings, SystemClock};
use keycard_store::Store;

use crate::cmd::{demo, open_store};
use crate::config;

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
    /// Rotate the signing keys every this many days (0: only by `keycard keys rotate`).
    #[arg(long, env = "KEYCARD_KEY_ROTATION_DAYS")]
    pub(crate) key_rotation_days: Option<i64>,
}

/// `keycard serve`, or `keycard demo` when `demo` is set.
pub(crate) async fn run(
    db_url: &str,
    file: &config::FileConfig,
    args: ServeArgs,
    demo: bool,
) -> anyhow::Result<()> {
    init_logging(
        args.log_format
            .as_deref()
            .or(file.log_format.as_deref())
            .unwrap_or("text"),
    );
    let mut settings = config::settings(file, &args)?;
    settings.demo = demo;
    let addr = config::addr(file, &args);
    let master = config::master_key(file, db_url)?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let store = open_store(db_url, !args.no_migrate).await?;
    run_server(store, settings, master, listener, addr, demo).await
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
    listener: tokio::net::TcpListener,
    addr: String,
    demo: bool,
) -> anyhow::Result<()> {
    let clock: Arc<dyn keycard_protocol::Clock> = Arc::new(SystemClock);
    if demo {
        demo::seed(&store, &settings, clock.now()).await?;
    }
    let app = App::new(store, settings.clone(), master, clock).await?;
    keycard_server::metrics_handle();
    keycard_server::spawn_background(&app);
    tracing::info!(addr = %addr, issuer = %settings.issuer.as_str(), "keycard listening");
    let router = keycard_server::router(app);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await?;
    Ok(())
}

async fn shutdown() {
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
