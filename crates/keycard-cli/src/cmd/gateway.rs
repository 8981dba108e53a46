//! `keycard gateway`: the API gateway (`keycard_gateway`) run from a TOML file, and
//! `keycard gateway check`, which validates the file and prints the routes.
//!
//! [`run`] reads the file named by the global `--config`, reads the client secret from the
//! environment variable the file names (`client_secret_env`), starts the gateway on `listen`
//! (and the metrics listener on `metrics_listen`), then reloads on SIGHUP and whenever the
//! file's modification time or size changes (polled every second).
//!
//! Invariants: a reload is atomic — the new file is parsed and validated completely, and the
//! secret read, before it replaces the old configuration; a bad file is refused with its line
//! and column and the old configuration keeps serving; requests in flight finish under the
//! configuration they started with. The secret is never printed.
//!
//! Not here: what the gateway does (`keycard_gateway`), the file's keys
//! (`crates/keycard-gateway/gateway.example.toml`).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use keycard_gateway::config::GatewayConfig;
use keycard_gateway::{Gateway, GatewayOptions, serve};

use crate::cmd::serve::init_logging;

#[derive(Args, Debug)]
pub(crate) struct GatewayArgs {
    #[command(subcommand)]
    cmd: Option<GatewayCmd>,
    /// Log format: `text` or `json`.
    #[arg(long, default_value = "text", env = "KEYCARD_LOG_FORMAT")]
    log_format: String,
}

#[derive(Subcommand, Debug)]
enum GatewayCmd {
    /// Validate the configuration file and print the settings and the routes.
    Check,
}

/// `keycard gateway [check] --config FILE`.
pub(crate) async fn run(args: GatewayArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let Some(path) = config else {
        bail!("keycard gateway needs --config FILE (see gateway.example.toml)");
    };
    let config = load(path)?;
    if let Some(GatewayCmd::Check) = args.cmd {
        print!("{}", config.describe());
        if let Some(c) = config.client()
            && secret(&config).is_none()
        {
            eprintln!(
                "warning: ${} is not set; `keycard gateway` will refuse to start",
                c.client_secret_env
            );
        }
        return Ok(());
    }
    init_logging(&args.log_format);
    let listener = tokio::net::TcpListener::bind(config.listen())
        .await
        .with_context(|| format!("cannot listen on {}", config.listen()))?;
    let metrics = match config.metrics_listen() {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?,
        ),
        None => None,
    };
    let limits = *config.limits();
    let gateway = Gateway::new(
        config.clone(),
        secret(&config).as_deref(),
        GatewayOptions::default(),
    )?;
    tracing::info!(listen = %config.listen(), routes = config.routes().routes().len(), "gateway started");
    if let Some(m) = metrics {
        tokio::spawn(serve::serve_metrics(m, gateway.clone()));
    }
    tokio::spawn(watch(path.to_owned(), gateway.clone()));
    serve::serve(listener, gateway, limits).await;
    Ok(())
}

/// Reads and validates the file; errors name the file, the line and the column.
fn load(path: &Path) -> anyhow::Result<GatewayConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    GatewayConfig::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn secret(config: &GatewayConfig) -> Option<String> {
    let c = config.client()?;
    std::env::var(&c.client_secret_env)
        .ok()
        .filter(|s| !s.is_empty())
}

/// What tells that the file changed.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Reloads on SIGHUP and when the file changes.
async fn watch(path: PathBuf, gateway: Gateway) {
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "no SIGHUP handler; reloading on file changes only");
            None
        }
    };
    let mut last = stamp(&path);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let signalled = tokio::select! {
            _ = tick.tick() => false,
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => None } } => true,
        };
        let now = stamp(&path);
        if !signalled && now == last {
            continue;
        }
        last = now;
        match load(&path).and_then(|c| {
            let secret = secret(&c);
            gateway.reload(c, secret.as_deref()).map_err(Into::into)
        }) {
            Ok(()) => tracing::info!(file = %path.display(), signalled, "configuration reloaded"),
            Err(e) => tracing::error!(
                error = %e,
                "configuration refused; the previous configuration keeps serving"
            ),
        }
    }
}
