//! The listener settings of `keycard serve` and `keycard demo`: connection limits, trusted
//! proxies and the metrics listener, from flags, `KEYCARD_*` variables and the TOML file (in
//! that order of precedence), parsed once into `keycard_serve::ServeOptions`.
//!
//! [`ListenArgs`] is flattened into `ServeArgs`; [`serve_options`] validates and combines;
//! [`describe`] is what `keycard config-check` prints.
//!
//! Defaults are keycard-serve's (`ServeOptions::default`): nothing is trusted and there is no
//! metrics listener unless configured. Not here: serving (`cmd::serve`), the rest of the
//! configuration (`crate::config`).

use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use keycard_serve::{ForwardedHeader, ServeOptions, TrustedProxies, TrustedProxy};
use serde_json::json;

use crate::config::FileConfig;

/// Connection limits, trusted proxies and the metrics listener.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct ListenArgs {
    /// Seconds a client has to send a request head (default 10).
    #[arg(long, env = "KEYCARD_HEADER_READ_TIMEOUT", value_name = "SECS")]
    pub(crate) header_read_timeout: Option<u64>,
    /// Seconds a kept-alive connection may stay idle (default 60).
    #[arg(long, env = "KEYCARD_IDLE_TIMEOUT", value_name = "SECS")]
    pub(crate) idle_timeout: Option<u64>,
    /// Seconds a request body has to arrive (default 30).
    #[arg(long, env = "KEYCARD_BODY_TIMEOUT", value_name = "SECS")]
    pub(crate) body_timeout: Option<u64>,
    /// Seconds a request may take in all (default 60).
    #[arg(long, env = "KEYCARD_REQUEST_TIMEOUT", value_name = "SECS")]
    pub(crate) request_timeout: Option<u64>,
    /// Connections open at once (default 10000, or fewer under a low open-file limit).
    #[arg(long, env = "KEYCARD_MAX_CONNECTIONS")]
    pub(crate) max_connections: Option<usize>,
    /// Connections open at once from one IPv4 address or IPv6 /64 (default 256).
    #[arg(long, env = "KEYCARD_MAX_CONNECTIONS_PER_PEER")]
    pub(crate) max_connections_per_peer: Option<usize>,
    /// Seconds shutdown waits for requests in flight (default 20).
    #[arg(long, env = "KEYCARD_SHUTDOWN_GRACE", value_name = "SECS")]
    pub(crate) shutdown_grace: Option<u64>,
    /// A proxy (address or CIDR network) whose forwarded header names the client; repeat it
    /// for more. None by default.
    #[arg(
        long = "trusted-proxy",
        env = "KEYCARD_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "ADDR_OR_CIDR"
    )]
    pub(crate) trusted_proxies: Vec<String>,
    /// The header the trusted proxies write: x-forwarded-for (default) or forwarded.
    #[arg(long, env = "KEYCARD_FORWARDED_HEADER")]
    pub(crate) forwarded_header: Option<String>,
    /// Serve /metrics on this address (default: no metrics endpoint).
    #[arg(long, env = "KEYCARD_METRICS_ADDR")]
    pub(crate) metrics_addr: Option<String>,
}

/// The listener options `serve` runs with.
///
/// It first raises the open-file limit, as `serve` does, so the default connection cap it
/// derives is the one `serve` uses (`keycard config-check` prints it).
pub(crate) fn serve_options(file: &FileConfig, args: &ListenArgs) -> anyhow::Result<ServeOptions> {
    keycard_serve::raise_fd_limit();
    let mut o = ServeOptions::default();
    let secs =
        |flag: Option<u64>, file: Option<u64>, default: Duration, name: &str, min: u64| match flag
            .or(file)
        {
            None => Ok(default),
            Some(v) if (min..=3600).contains(&v) => Ok(Duration::from_secs(v)),
            Some(_) => bail!("{name} must be between {min} and 3600 seconds"),
        };
    o.header_read_timeout = secs(
        args.header_read_timeout,
        file.header_read_timeout,
        o.header_read_timeout,
        "header_read_timeout",
        1,
    )?;
    o.idle_timeout = secs(
        args.idle_timeout,
        file.idle_timeout,
        o.idle_timeout,
        "idle_timeout",
        1,
    )?;
    o.body_timeout = secs(
        args.body_timeout,
        file.body_timeout,
        o.body_timeout,
        "body_timeout",
        1,
    )?;
    o.request_timeout = secs(
        args.request_timeout,
        file.request_timeout,
        o.request_timeout,
        "request_timeout",
        1,
    )?;
    o.shutdown_grace = secs(
        args.shutdown_grace,
        file.shutdown_grace,
        o.shutdown_grace,
        "shutdown_grace",
        0,
    )?;
    let count = |flag: Option<usize>, file: Option<usize>, default: usize, name: &str| match flag
        .or(file)
    {
        None => Ok(default),
        Some(0) => bail!("{name} must be at least 1"),
        Some(v) => Ok(v),
    };
    o.max_connections = count(
        args.max_connections,
        file.max_connections,
        o.max_connections,
        "max_connections",
    )?;
    o.max_connections_per_peer = count(
        args.max_connections_per_peer,
        file.max_connections_per_peer,
        o.max_connections_per_peer,
        "max_connections_per_peer",
    )?;
    let proxies = if args.trusted_proxies.is_empty() {
        file.trusted_proxies.clone().unwrap_or_default()
    } else {
        args.trusted_proxies.clone()
    };
    let networks = proxies
        .iter()
        .map(|p| TrustedProxy::parse(p.trim()).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()
        .context("trusted_proxies")?;
    let header = match args
        .forwarded_header
        .as_deref()
        .or(file.forwarded_header.as_deref())
    {
        Some(h) => ForwardedHeader::parse(h).map_err(anyhow::Error::msg)?,
        None => ForwardedHeader::default(),
    };
    o.trusted_proxies = TrustedProxies::new(networks, header);
    Ok(o)
}

/// Where `/metrics` is served, if anywhere.
pub(crate) fn metrics_addr(file: &FileConfig, args: &ListenArgs) -> Option<String> {
    args.metrics_addr.clone().or(file.metrics_addr.clone())
}

/// The effective listener settings, for `keycard config-check`.
pub(crate) fn describe(o: &ServeOptions, metrics_addr: Option<&str>) -> serde_json::Value {
    json!({
        "header_read_timeout": o.header_read_timeout.as_secs(),
        "idle_timeout": o.idle_timeout.as_secs(),
        "body_timeout": o.body_timeout.as_secs(),
        "request_timeout": o.request_timeout.as_secs(),
        "max_connections": o.max_connections,
        "max_connections_per_peer": o.max_connections_per_peer,
        "shutdown_grace": o.shutdown_grace.as_secs(),
        "trusted_proxies": o.trusted_proxies.networks().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "forwarded_header": o.trusted_proxies.header().as_str(),
        "metrics_addr": metrics_addr,
    })
}
