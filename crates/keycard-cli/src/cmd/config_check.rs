//! `keycard config-check`: print the configuration `keycard serve` would run with, as JSON.
//!
//! [`run`] resolves the same [`ServeArgs`], environment and file that `serve` does and prints
//! the result, or fails on the same invalid setting `serve` would refuse.
//!
//! The master key is never printed, only where it is kept; credentials in the database URL
//! are printed as `***`; nothing is written, opened or bound. The token and grant lifetimes,
//! the key rotation period (`key_rotation_days`, 0 when off), the listener limits, trusted
//! proxies and metrics listener are printed as `serve` would use them.
//!
//! Not here: the precedence rules and validation themselves (`crate::config`).

use serde_json::json;

use crate::cmd::serve::ServeArgs;
use crate::{config, listen};

pub(crate) fn run(db_url: &str, file: &config::FileConfig, args: &ServeArgs) -> anyhow::Result<()> {
    let s = config::settings(file, args)?;
    let listen = listen::serve_options(file, &args.listen)?;
    let metrics_addr = listen::metrics_addr(file, &args.listen);
    println!(
        "{}",
        json!({
            "database_url": config::redact_url(db_url), "addr": config::addr(file, args),
            "issuer": s.issuer.as_str(), "signing_alg": s.signing_alg.as_str(),
            "access_token_ttl": s.access_token_ttl_secs,
            "refresh_token_ttl": s.refresh_token_ttl_secs, "session_ttl": s.session_ttl_secs,
            "device_code_ttl": s.device_code_ttl_secs,
            "device_poll_interval": s.device_poll_interval_secs,
            "grant_ttl": s.grant_ttl_secs,
            "key_rotation_days": s.key_rotation_secs.map_or(0, |secs| secs / 86_400),
            "master_key": "(redacted)", "master_key_file": config::master_key_path(file, db_url),
            "listen": listen::describe(&listen, metrics_addr.as_deref()),
        })
    );
    Ok(())
}
