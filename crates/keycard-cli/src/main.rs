//! `keycard`: the Keycard binary. Serves the authorization server and administers its
//! database (users, clients, APIs, signing keys) — also while the server runs — and signs
//! people in from the terminal to any OpenID provider (`keycard auth`).
//!
//! This is the only crate that reads files and the environment: it turns flags, `KEYCARD_*`
//! variables and an optional TOML file into typed `keycard_server::Settings`.
//!
//! This file holds only the top-level parser and the dispatch; each command family lives in
//! its own module under `cmd/`, with its clap types next to the code that runs it.

mod cmd;
mod config;
mod demo_api;
mod listen;

use clap::{Parser, Subcommand};

use crate::cmd::{
    api, auth, backup, bench, client, config_check, demo, gateway, keys, logout_deliveries,
    migrate, pkce, serve, user,
};

#[derive(Parser, Debug)]
#[command(
    name = "keycard",
    version,
    about = "Keycard: a self-hosted OAuth 2.1 + OpenID Connect server"
)]
struct Cli {
    /// Database URL (`sqlite://path`); default ./keycard.db.
    #[arg(long, global = true, env = "KEYCARD_DATABASE_URL")]
    database_url: Option<String>,
    /// TOML configuration file.
    #[arg(long, global = true, env = "KEYCARD_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the authorization server.
    Serve(serve::ServeArgs),
    /// Run the whole system for a browser: the authorization server, the gateway, the demo API
    /// and a web app on keycard-bff, with a demo user and clients (data in --dir).
    Demo(demo::DemoArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(user::UserCmd),
    /// Manage OAuth clients (applications).
    #[command(subcommand)]
    Client(client::ClientCmd),
    /// Manage APIs (resource servers / audiences).
    #[command(subcommand)]
    Api(api::ApiCmd),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// List back-channel logout deliveries, most recent first: attempts, next attempt,
    /// delivery time and last error.
    LogoutDeliveries(logout_deliveries::LogoutDeliveriesArgs),
    /// Write a consistent copy of the SQLite database to PATH (safe while the server runs).
    /// The signing keys in it stay encrypted under the master key, which is not copied: keep
    /// the key apart from the backup. With PostgreSQL, use pg_dump.
    Backup(backup::BackupArgs),
    /// Print a fresh PKCE code_verifier and its S256 code_challenge.
    Pkce,
    /// Run the demo photos/orders API (a resource server built on keycard-validate).
    DemoApi(demo::DemoApiArgs),
    /// Print the effective configuration (secrets redacted).
    ConfigCheck(serve::ServeArgs),
    /// Run the API gateway (`--config gateway.toml`), or check its configuration.
    Gateway(gateway::GatewayArgs),
    /// Sign in to an OpenID provider from the terminal and get access tokens.
    #[command(subcommand)]
    Auth(auth::AuthCmd),
    /// Micro-benchmarks used by bench/run.sh.
    #[command(subcommand, hide = true)]
    Bench(bench::BenchCmd),
}

/// jemalloc instead of glibc malloc. Measured with the same code: client credentials ES256
/// +13 %, introspection +29 %, refresh +12 %, with idle and peak RSS unchanged (glibc returned
/// big frees at once; jemalloc's background thread does it 250 ms later, see
/// `.cargo/config.toml`). mimalloc was faster still but kept 35 MiB at idle.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Few blocking threads: RSA signing runs there, and every extra thread is another malloc
    // arena that keeps memory.
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(cores * 2)
        .build()?;
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // `--config` names the gateway's own file here, not the server's.
    if let Cmd::Gateway(args) = cli.cmd {
        return gateway::run(args, cli.config.as_deref()).await;
    }
    // The client side reads neither the server's configuration nor its database. Its
    // failures are one line for people and scripts alike (no backtrace, whatever
    // RUST_BACKTRACE says), and a non-zero exit.
    if let Cmd::Auth(c) = cli.cmd {
        if let Err(e) = auth::run(c, cli.json).await {
            eprintln!("Error: {e:#}");
            std::process::exit(1);
        }
        return Ok(());
    }
    let file = config::FileConfig::load(cli.config.as_deref())?;
    let db_url = cli
        .database_url
        .clone()
        .or(file.database_url.clone())
        .unwrap_or_else(|| "sqlite://keycard.db".into());
    let json = cli.json;
    match cli.cmd {
        Cmd::Pkce => pkce::run(json),
        Cmd::Bench(c) => bench::run(c, json).await,
        Cmd::DemoApi(args) => demo::run_api(args).await,
        Cmd::Serve(args) => serve::run(&db_url, &file, args).await,
        Cmd::Demo(args) => {
            let given = cli.database_url.as_deref().or(file.database_url.as_deref());
            demo::run(given, &file, args, json).await
        }
        Cmd::ConfigCheck(args) => config_check::run(&db_url, &file, &args),
        Cmd::Backup(args) => backup::run(&db_url, &file, &args, json).await,
        Cmd::Migrate => migrate::run(&db_url, json).await,
        Cmd::User(c) => {
            let store = cmd::open_store(&db_url, true).await?;
            user::run(&store, c, cmd::revocation_now(&file)?, json).await
        }
        Cmd::Client(c) => {
            let store = cmd::open_store(&db_url, true).await?;
            client::run(&store, c, cmd::revocation_now(&file)?, json).await
        }
        Cmd::Api(c) => api::run(&cmd::open_store(&db_url, true).await?, c, json).await,
        Cmd::LogoutDeliveries(args) => {
            logout_deliveries::run(&cmd::open_store(&db_url, true).await?, &args, json).await
        }
        Cmd::Gateway(_) | Cmd::Auth(_) => Ok(()),
        Cmd::Keys(c) => {
            let master = config::master_key(&file, &db_url)?;
            let store = cmd::open_store(&db_url, true).await?;
            keys::run(&store, &master, &file, c, json).await
        }
    }
}
