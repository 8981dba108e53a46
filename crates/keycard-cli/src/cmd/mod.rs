//! The `keycard` subcommands: one module per command family, each holding its clap
//! `Subcommand`/`Args` types next to the code that runs them.
//!
//! `main` parses the command line and calls each module's `run` (`serve::run`, `user::run`,
//! ...). Two helpers are shared by most commands: [`open_store`], the database behind
//! `--database-url`, and [`say`], which prints either a line of text or, with `--json`, one
//! JSON value.
//!
//! The global flags (`--database-url`, `--config`, `--json`) and the configuration file are
//! resolved once in `main`, so commands take plain values and never read them again. Failures
//! are `anyhow` errors, which `main` prints; no library crate sees anyhow.
//!
//! Not here: the configuration file and how flags override it (`crate::config`), the demo
//! API's routes and validation bench (`crate::demo_api`), and every protocol or storage rule,
//! which the commands call in `keycard-protocol`, `keycard-server` and the store crates.

pub(crate) mod api;
pub(crate) mod auth;
pub(crate) mod backup;
pub(crate) mod bench;
pub(crate) mod client;
pub(crate) mod config_check;
pub(crate) mod demo;
pub(crate) mod gateway;
pub(crate) mod keys;
pub(crate) mod logout_deliveries;
pub(crate) mod migrate;
pub(crate) mod pkce;
pub(crate) mod serve;
pub(crate) mod user;

use anyhow::Context as _;
use keycard_store::Revocation;
use keycard_store_sql::{AnyStore, AnyStoreUrl, PgStore, SqliteStore};

/// Opens the store named by the URL: SQLite (`sqlite://PATH` or a bare path) or PostgreSQL,
/// migrating it when `migrate` is set (SQLite always migrates on open).
pub(crate) async fn open_store(url: &str, migrate: bool) -> anyhow::Result<AnyStore> {
    Ok(match AnyStoreUrl::parse(url).map_err(anyhow::Error::msg)? {
        AnyStoreUrl::Sqlite(u) => AnyStore::Sqlite(
            SqliteStore::open_url(&u)
                .await
                .with_context(|| format!("opening {u}"))?,
        ),
        AnyStoreUrl::Postgres(u) => AnyStore::Postgres(
            PgStore::connect(&u, migrate)
                .await
                .context("connecting to PostgreSQL")?,
        ),
    })
}

/// A revocation made now by an admin command: it matters as long as any token the server may
/// have signed lives (the configured lifetimes, as the server sees them).
pub(crate) fn revocation_now(file: &crate::config::FileConfig) -> anyhow::Result<Revocation> {
    let settings = crate::config::settings(file, &serve::ServeArgs::default())?;
    let at = keycard_protocol::Clock::now(&keycard_os::SystemClock);
    Ok(Revocation {
        at,
        until: at.plus(settings.max_jwt_ttl()),
    })
}

/// Prints `v` as one line of JSON under `--json`, and `text` otherwise.
pub(crate) fn say(json: bool, v: serde_json::Value, text: &str) {
    if json {
        println!("{v}");
    } else {
        println!("{text}");
    }
}
