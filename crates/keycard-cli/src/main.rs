//! `keycard`: the Keycard binary. Serves the authorization server and administers its
//! database (users, clients, APIs, signing keys) — also while the server runs.
//!
//! This is the only crate that reads files and the environment: it turns flags, `KEYCARD_*`
//! variables and an optional TOML file into typed `keycard_server::Settings`.

mod config;
mod demo_api;

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use keycard_jose::Alg;
use keycard_protocol::pkce::{CodeChallenge, CodeVerifier};
use keycard_protocol::policy::{Api, Client, GrantType};
use keycard_protocol::redirect::RedirectUri;
use keycard_protocol::{ClientId, ScopeSet, TokenHash};
use keycard_server::crypto::{MasterKey, new_id, new_secret, random_bytes};
use keycard_server::{App, Clock as _, Settings, SystemClock};
use keycard_store::{Store, User};
use keycard_store_sql::{AnyStore, AnyStoreUrl, PgStore, SqliteStore};
use serde_json::json;

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
    Serve(ServeArgs),
    /// Run the server with a demo user, app, machine client and API, ready for the browser.
    Demo(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCmd),
    /// Manage OAuth clients (applications).
    #[command(subcommand)]
    Client(ClientCmd),
    /// Manage APIs (resource servers / audiences).
    #[command(subcommand)]
    Api(ApiCmd),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Write a consistent copy of the SQLite database to PATH (safe while the server runs).
    /// The signing keys in it stay encrypted under the master key, which is not copied: keep
    /// the key apart from the backup. With PostgreSQL, use pg_dump.
    Backup {
        /// Where to write the copy; must not exist yet.
        path: std::path::PathBuf,
    },
    /// Print a fresh PKCE code_verifier and its S256 code_challenge.
    Pkce,
    /// Run the demo photos/orders API (a resource server built on keycard-validate).
    DemoApi {
        #[arg(long, default_value = "127.0.0.1:9090")]
        addr: String,
        /// The Keycard issuer URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        issuer: String,
        /// This API's audience identifier.
        #[arg(long, default_value = "https://api.example.com")]
        audience: String,
    },
    /// Print the effective configuration (secrets redacted).
    ConfigCheck(ServeArgs),
    /// Micro-benchmarks used by bench/run.sh.
    #[command(subcommand, hide = true)]
    Bench(BenchCmd),
}

#[derive(Args, Debug, Clone, Default)]
pub(crate) struct ServeArgs {
    /// Listen address.
    #[arg(long, env = "KEYCARD_ADDR")]
    addr: Option<String>,
    /// Issuer URL (default http://<addr>).
    #[arg(long, env = "KEYCARD_ISSUER")]
    issuer: Option<String>,
    /// Algorithm for newly generated signing keys: RS256, ES256 or EdDSA.
    #[arg(long, env = "KEYCARD_SIGNING_ALG")]
    signing_alg: Option<String>,
    /// Access-token lifetime in seconds (APIs may set their own).
    #[arg(long, env = "KEYCARD_ACCESS_TOKEN_TTL")]
    access_token_ttl: Option<i64>,
    /// Refresh-token lifetime in seconds.
    #[arg(long, env = "KEYCARD_REFRESH_TOKEN_TTL")]
    refresh_token_ttl: Option<i64>,
    /// Browser session lifetime in seconds.
    #[arg(long, env = "KEYCARD_SESSION_TTL")]
    session_ttl: Option<i64>,
    /// Log format: text or json.
    #[arg(long, env = "KEYCARD_LOG_FORMAT")]
    log_format: Option<String>,
    /// Allow an http issuer on a non-loopback host (development only).
    #[arg(long)]
    allow_http_issuer: bool,
    /// Do not apply database migrations on start (run `keycard migrate` instead).
    #[arg(long, env = "KEYCARD_NO_MIGRATE")]
    no_migrate: bool,
}

#[derive(Subcommand, Debug)]
enum UserCmd {
    /// Add a user; the password comes from a prompt or, with --password-stdin, one line of stdin.
    Add {
        username: String,
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        given_name: Option<String>,
        #[arg(long)]
        family_name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        email_verified: bool,
        #[arg(long)]
        picture: Option<String>,
    },
    List,
    Remove {
        username: String,
    },
    SetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    Disable {
        username: String,
    },
    Enable {
        username: String,
    },
}

#[derive(Subcommand, Debug)]
enum ClientCmd {
    /// Register a client. Confidential clients get a secret, shown once.
    Add {
        client_id: String,
        #[arg(long)]
        name: Option<String>,
        /// A confidential client (has a secret).
        #[arg(long, conflicts_with = "public")]
        confidential: bool,
        /// A public client (native app or SPA: no secret, PKCE only).
        #[arg(long)]
        public: bool,
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// authorization_code, refresh_token or client_credentials (repeatable).
        #[arg(long = "grant")]
        grants: Vec<String>,
        /// Allowed scopes, space separated.
        #[arg(long, default_value = "")]
        scope: String,
        /// Allowed API audiences (repeatable).
        #[arg(long = "audience")]
        audiences: Vec<String>,
        /// Skip the consent page for this client.
        #[arg(long)]
        first_party: bool,
    },
    List,
    Remove {
        client_id: String,
    },
}

#[derive(Subcommand, Debug)]
enum ApiCmd {
    /// Register an API, identified by its audience (e.g. https://api.example.com).
    Add {
        identifier: String,
        #[arg(long)]
        name: Option<String>,
        /// The API's scopes, space separated.
        #[arg(long, default_value = "")]
        scope: String,
        /// Access-token lifetime for this API, in seconds.
        #[arg(long, default_value_t = 3600)]
        token_ttl: i64,
    },
    List,
    Remove {
        identifier: String,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCmd {
    List,
    /// Activate the published next key, retire the active one, publish a new next key.
    Rotate {
        #[arg(long)]
        signing_alg: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum BenchCmd {
    /// Single-core rate of full access-token validation by keycard-validate.
    Validate {
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        #[arg(long, default_value = "RS256")]
        alg: String,
    },
    /// Raw argon2id (19 MiB, t=2, p=1) hash rate over N threads.
    Argon2 {
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
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
    let file = config::FileConfig::load(cli.config.as_deref())?;
    let db_url = cli
        .database_url
        .clone()
        .or(file.database_url.clone())
        .unwrap_or_else(|| "sqlite://keycard.db".into());
    match cli.cmd {
        Cmd::Pkce => {
            let v = CodeVerifier::from_random(&random_bytes::<32>());
            let c = CodeChallenge::s256(&v);
            if cli.json {
                println!(
                    "{}",
                    json!({ "code_verifier": v.secret(), "code_challenge": c.as_str(), "code_challenge_method": "S256" })
                );
            } else {
                println!(
                    "CODE_VERIFIER={}\nCODE_CHALLENGE={}",
                    v.secret(),
                    c.as_str()
                );
            }
            Ok(())
        }
        Cmd::Bench(BenchCmd::Argon2 { seconds, threads }) => {
            bench_argon2(seconds, threads, cli.json)
        }
        Cmd::Bench(BenchCmd::Validate { seconds, alg }) => {
            let alg = Alg::parse(&alg).ok_or_else(|| anyhow::anyhow!("unknown alg {alg}"))?;
            let rate = demo_api::bench_validate(seconds, alg).await?;
            say(
                cli.json,
                json!({ "verifications_per_sec": rate, "alg": alg.as_str() }),
                &format!("{rate:.0} validations/s on one core ({})", alg.as_str()),
            );
            Ok(())
        }
        Cmd::DemoApi {
            addr,
            issuer,
            audience,
        } => {
            init_logging("text");
            demo_api::run(&addr, &issuer, &audience).await
        }
        Cmd::Serve(args) => serve(&db_url, &file, args, false).await,
        Cmd::Demo(args) => serve(&db_url, &file, args, true).await,
        Cmd::ConfigCheck(args) => {
            let s = config::settings(&file, &args)?;
            println!(
                "{}",
                json!({
                    "database_url": db_url, "addr": config::addr(&file, &args), "issuer": s.issuer.as_str(),
                    "signing_alg": s.signing_alg.as_str(), "access_token_ttl": s.access_token_ttl_secs,
                    "refresh_token_ttl": s.refresh_token_ttl_secs, "session_ttl": s.session_ttl_secs,
                    "master_key": "(redacted)", "master_key_file": config::master_key_path(&file, &db_url),
                })
            );
            Ok(())
        }
        Cmd::Backup { path } => backup(&db_url, &file, &path, cli.json).await,
        Cmd::Migrate => {
            open_store(&db_url, true).await?;
            say(cli.json, json!({ "migrated": true }), "migrations applied");
            Ok(())
        }
        Cmd::User(c) => user_cmd(&open_store(&db_url, true).await?, c, cli.json).await,
        Cmd::Client(c) => client_cmd(&open_store(&db_url, true).await?, c, cli.json).await,
        Cmd::Api(c) => api_cmd(&open_store(&db_url, true).await?, c, cli.json).await,
        Cmd::Keys(c) => {
            let master = config::master_key(&file, &db_url)?;
            let store = open_store(&db_url, true).await?;
            keys_cmd(&store, &master, &file, c, cli.json).await
        }
    }
}

/// Opens the store named by the URL: SQLite (`sqlite://PATH` or a bare path) or PostgreSQL,
/// migrating it when `migrate` is set (SQLite always migrates on open).
async fn open_store(url: &str, migrate: bool) -> anyhow::Result<AnyStore> {
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

/// `keycard backup PATH`: `VACUUM INTO` on SQLite; PostgreSQL has its own tools.
async fn backup(
    db_url: &str,
    file: &config::FileConfig,
    path: &std::path::Path,
    json_out: bool,
) -> anyhow::Result<()> {
    let AnyStoreUrl::Sqlite(url) = AnyStoreUrl::parse(db_url).map_err(anyhow::Error::msg)? else {
        bail!("keycard backup copies a SQLite database; back up PostgreSQL with pg_dump");
    };
    let source = keycard_store_sql::sqlite::path_of_url(&url);
    if !source.exists() {
        bail!("no SQLite database at {}", source.display());
    }
    if path.exists() {
        bail!(
            "{} already exists; a backup never overwrites",
            path.display()
        );
    }
    SqliteStore::open(source)
        .await
        .with_context(|| format!("opening {}", source.display()))?
        .backup_into(path)
        .await
        .with_context(|| format!("writing the backup to {}", path.display()))?;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let key = config::master_key_source(file, db_url);
    say(
        json_out,
        json!({ "backup": path.display().to_string(), "bytes": bytes, "master_key": key }),
        &format!(
            "wrote {} ({bytes} bytes)\nits signing keys are encrypted under the master key ({key}); \
             keep that key apart from the backup. To restore, serve the copy with the same key \
             (as <copy>.key, or KEYCARD_MASTER_KEY_FILE / KEYCARD_MASTER_KEY).",
            path.display()
        ),
    );
    Ok(())
}

fn say(json: bool, v: serde_json::Value, text: &str) {
    if json {
        println!("{v}");
    } else {
        println!("{text}");
    }
}

fn init_logging(format: &str) {
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

async fn serve(
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

async fn run_server<S: Store>(
    store: S,
    settings: Settings,
    master: MasterKey,
    listener: tokio::net::TcpListener,
    addr: String,
    demo: bool,
) -> anyhow::Result<()> {
    let clock: Arc<dyn keycard_server::Clock> = Arc::new(SystemClock);
    if demo {
        seed_demo(&store, &settings, clock.now()).await?;
    }
    let app = App::new(store, settings.clone(), master, clock).await?;
    keycard_server::metrics::handle();
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

/// Creates (or refreshes) the demo user, app, machine client and API, and prints how to use them.
async fn seed_demo<S: Store>(
    store: &S,
    s: &Settings,
    now: keycard_protocol::UnixTime,
) -> anyhow::Result<()> {
    use keycard_server::routes::demo::{DEMO_API, DEMO_CLIENT, demo_redirect_uri};
    let iss = s.issuer.as_str();
    if store.api(DEMO_API).await?.is_none() {
        store
            .create_api(
                &Api {
                    identifier: DEMO_API.into(),
                    name: "Photos API".into(),
                    scopes: ScopeSet::parse("photos:read orders:write")?,
                    access_token_ttl_secs: 3600,
                },
                now,
            )
            .await?;
    }
    let password = new_secret().secret().chars().take(16).collect::<String>();
    let hash = keycard_server::password::hash_blocking(&password).map_err(anyhow::Error::msg)?;
    if store.user_by_username("alice").await?.is_some() {
        store.set_password("alice", &hash).await?;
    } else {
        store
            .create_user(&User {
                id: new_id(),
                username: "alice".into(),
                password_hash: hash,
                name: Some("Alice Example".into()),
                given_name: Some("Alice".into()),
                family_name: Some("Example".into()),
                picture: None,
                email: Some("alice@example.com".into()),
                email_verified: true,
                disabled: false,
                created_at: now,
            })
            .await?;
    }
    for id in [DEMO_CLIENT, "demo-m2m"] {
        if store.client(id).await?.is_some() {
            store.remove_client(id).await?;
        }
    }
    store
        .create_client(
            &Client {
                id: ClientId::parse(DEMO_CLIENT)?,
                name: "Demo Photo App".into(),
                secret_hash: None,
                redirect_uris: vec![
                    RedirectUri::register(&demo_redirect_uri(iss)).map_err(anyhow::Error::msg)?,
                    RedirectUri::register("https://example-app.com/redirect")
                        .map_err(anyhow::Error::msg)?,
                ],
                grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
                scopes: ScopeSet::parse("openid profile email offline_access photos:read")?,
                audiences: vec![DEMO_API.into()],
                first_party: false,
            },
            now,
        )
        .await?;
    let m2m_secret = new_secret();
    store
        .create_client(
            &Client {
                id: ClientId::parse("demo-m2m")?,
                name: "Demo back-end job".into(),
                secret_hash: Some(m2m_secret.hash()),
                redirect_uris: vec![],
                grant_types: vec![GrantType::ClientCredentials],
                scopes: ScopeSet::parse("photos:read orders:write")?,
                audiences: vec![DEMO_API.into()],
                first_party: false,
            },
            now,
        )
        .await?;
    println!(
        "\nKeycard demo is starting at {iss}\n\n  Browser:  open {iss}/demo and sign in as  alice / {password}\n  Machine:  curl -s -X POST {iss}/token -d grant_type=client_credentials \\\n              -d client_id=demo-m2m -d client_secret={}\n\n  (The password and secret are new on every `keycard demo` start.)\n",
        m2m_secret.secret()
    );
    let _ = std::io::stdout().flush();
    Ok(())
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    let pw = if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        let a = rpassword::prompt_password("Password: ")?;
        let b = rpassword::prompt_password("Repeat: ")?;
        if a != b {
            bail!("the passwords differ");
        }
        a
    };
    if pw.chars().count() < 8 {
        bail!("the password must have at least 8 characters");
    }
    if pw.len() > 1024 {
        bail!("the password is too long");
    }
    Ok(pw)
}

fn user_json(u: &User) -> serde_json::Value {
    json!({ "id": u.id, "username": u.username, "name": u.name, "email": u.email,
            "email_verified": u.email_verified, "disabled": u.disabled, "created_at": u.created_at.secs() })
}

async fn user_cmd<S: Store>(store: &S, c: UserCmd, json_out: bool) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match c {
        UserCmd::Add {
            username,
            password_stdin,
            name,
            given_name,
            family_name,
            email,
            email_verified,
            picture,
        } => {
            keycard_protocol::Username::parse(&username).map_err(|e| anyhow::anyhow!("{e}"))?;
            let pw = read_password(password_stdin)?;
            let hash =
                tokio::task::spawn_blocking(move || keycard_server::password::hash_blocking(&pw))
                    .await?
                    .map_err(anyhow::Error::msg)?;
            let u = User {
                id: new_id(),
                username,
                password_hash: hash,
                name,
                given_name,
                family_name,
                picture,
                email,
                email_verified,
                disabled: false,
                created_at: now,
            };
            store
                .create_user(&u)
                .await
                .map_err(|e| anyhow::anyhow!("cannot add user: {e}"))?;
            say(
                json_out,
                user_json(&u),
                &format!("added user {} (id {})", u.username, u.id),
            );
        }
        UserCmd::List => {
            let users = store.list_users().await?;
            if json_out {
                println!(
                    "{}",
                    serde_json::Value::Array(users.iter().map(user_json).collect())
                );
            } else {
                for u in users {
                    println!(
                        "{}\t{}\t{}{}",
                        u.username,
                        u.id,
                        u.email.unwrap_or_default(),
                        if u.disabled { "\tdisabled" } else { "" }
                    );
                }
            }
        }
        UserCmd::Remove { username } => {
            store
                .remove_user(&username)
                .await
                .map_err(|e| anyhow::anyhow!("cannot remove {username}: {e}"))?;
            say(
                json_out,
                json!({ "removed": username }),
                &format!("removed user {username}"),
            );
        }
        UserCmd::SetPassword {
            username,
            password_stdin,
        } => {
            let pw = read_password(password_stdin)?;
            let hash =
                tokio::task::spawn_blocking(move || keycard_server::password::hash_blocking(&pw))
                    .await?
                    .map_err(anyhow::Error::msg)?;
            store
                .set_password(&username, &hash)
                .await
                .map_err(|e| anyhow::anyhow!("cannot set password: {e}"))?;
            say(
                json_out,
                json!({ "username": username, "password_changed": true }),
                "password changed; sessions ended",
            );
        }
        UserCmd::Disable { username } => {
            store
                .set_user_disabled(&username, true)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            say(
                json_out,
                json!({ "username": username, "disabled": true }),
                "disabled",
            );
        }
        UserCmd::Enable { username } => {
            store
                .set_user_disabled(&username, false)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            say(
                json_out,
                json!({ "username": username, "disabled": false }),
                "enabled",
            );
        }
    }
    Ok(())
}

fn client_json(c: &Client) -> serde_json::Value {
    json!({
        "client_id": c.id.as_str(), "name": c.name, "type": if c.is_confidential() { "confidential" } else { "public" },
        "redirect_uris": c.redirect_uris.iter().map(RedirectUri::as_str).collect::<Vec<_>>(),
        "grant_types": c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "scope": c.scopes.to_wire(), "audiences": c.audiences, "first_party": c.first_party,
    })
}

async fn client_cmd<S: Store>(store: &S, c: ClientCmd, json_out: bool) -> anyhow::Result<()> {
    match c {
        ClientCmd::Add {
            client_id,
            name,
            confidential,
            public,
            redirect_uris,
            grants,
            scope,
            audiences,
            first_party,
        } => {
            if confidential == public {
                bail!("say --confidential or --public");
            }
            let id = ClientId::parse_strict(&client_id).map_err(|e| anyhow::anyhow!("{e}"))?;
            let redirect_uris = redirect_uris
                .iter()
                .map(|r| RedirectUri::register(r).map_err(|e| anyhow::anyhow!("{r}: {e}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut grant_types = Vec::new();
            for g in if grants.is_empty() {
                vec!["authorization_code".to_owned()]
            } else {
                grants
            } {
                grant_types.push(GrantType::parse(&g).ok_or_else(|| {
                    anyhow::anyhow!("unknown grant {g:?} (implicit and password are not offered)")
                })?);
            }
            if grant_types.contains(&GrantType::ClientCredentials) && public {
                bail!("client_credentials needs a confidential client");
            }
            if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
                bail!("the authorization_code grant needs at least one --redirect-uri");
            }
            for a in &audiences {
                if store.api(a).await?.is_none() {
                    bail!("unknown API {a}; add it first with `keycard api add {a}`");
                }
            }
            let secret = confidential.then(new_secret);
            let client = Client {
                id,
                name: name.unwrap_or_else(|| client_id.clone()),
                secret_hash: secret.as_ref().map(|s| TokenHash::of(s.secret())),
                redirect_uris,
                grant_types,
                scopes: ScopeSet::parse(&scope).map_err(|e| anyhow::anyhow!("{e}"))?,
                audiences,
                first_party,
            };
            store
                .create_client(&client, SystemClock.now())
                .await
                .map_err(|e| anyhow::anyhow!("cannot add client: {e}"))?;
            let mut v = client_json(&client);
            if let Some(s) = &secret {
                v["client_secret"] = s.secret().into();
            }
            let text = match &secret {
                Some(s) => format!(
                    "added client {client_id}\nclient_secret: {}\n(shown once; only its hash is stored)",
                    s.secret()
                ),
                None => format!("added public client {client_id}"),
            };
            say(json_out, v, &text);
        }
        ClientCmd::List => {
            let cs = store.list_clients().await?;
            if json_out {
                println!(
                    "{}",
                    serde_json::Value::Array(cs.iter().map(client_json).collect())
                );
            } else {
                for c in cs {
                    println!(
                        "{}\t{}\t{}",
                        c.id,
                        if c.is_confidential() {
                            "confidential"
                        } else {
                            "public"
                        },
                        c.name
                    );
                }
            }
        }
        ClientCmd::Remove { client_id } => {
            store
                .remove_client(&client_id)
                .await
                .map_err(|e| anyhow::anyhow!("cannot remove {client_id}: {e}"))?;
            say(
                json_out,
                json!({ "removed": client_id }),
                &format!("removed client {client_id}; its grants are revoked"),
            );
        }
    }
    Ok(())
}

async fn api_cmd<S: Store>(store: &S, c: ApiCmd, json_out: bool) -> anyhow::Result<()> {
    let api_json = |a: &Api| json!({ "identifier": a.identifier, "name": a.name, "scope": a.scopes.to_wire(), "token_ttl": a.access_token_ttl_secs });
    match c {
        ApiCmd::Add {
            identifier,
            name,
            scope,
            token_ttl,
        } => {
            keycard_protocol::policy::target(Some(&identifier), None)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if !(60..=86_400).contains(&token_ttl) {
                bail!("--token-ttl must be between 60 and 86400 seconds");
            }
            let api = Api {
                name: name.unwrap_or_else(|| identifier.clone()),
                identifier,
                scopes: ScopeSet::parse(&scope).map_err(|e| anyhow::anyhow!("{e}"))?,
                access_token_ttl_secs: token_ttl,
            };
            store
                .create_api(&api, SystemClock.now())
                .await
                .map_err(|e| anyhow::anyhow!("cannot add API: {e}"))?;
            say(
                json_out,
                api_json(&api),
                &format!("added API {}", api.identifier),
            );
        }
        ApiCmd::List => {
            let apis = store.list_apis().await?;
            if json_out {
                println!(
                    "{}",
                    serde_json::Value::Array(apis.iter().map(api_json).collect())
                );
            } else {
                for a in apis {
                    println!("{}\t{}", a.identifier, a.scopes.to_wire());
                }
            }
        }
        ApiCmd::Remove { identifier } => {
            store
                .remove_api(&identifier)
                .await
                .map_err(|e| anyhow::anyhow!("cannot remove {identifier}: {e}"))?;
            say(
                json_out,
                json!({ "removed": identifier }),
                &format!("removed API {identifier}"),
            );
        }
    }
    Ok(())
}

async fn keys_cmd<S: Store>(
    store: &S,
    master: &MasterKey,
    file: &config::FileConfig,
    c: KeysCmd,
    json_out: bool,
) -> anyhow::Result<()> {
    match c {
        KeysCmd::List => {
            let keys = store.signing_keys().await?;
            let v: Vec<_> = keys
                .iter()
                .map(|k| json!({ "kid": k.kid, "alg": k.alg, "state": k.state.as_str(), "created_at": k.created_at.secs(), "retire_until": k.retire_until.map(|t| t.secs()) }))
                .collect();
            if json_out {
                println!("{}", serde_json::Value::Array(v));
            } else {
                for k in keys {
                    println!("{}\t{}\t{}", k.kid, k.alg, k.state.as_str());
                }
            }
        }
        KeysCmd::Rotate { signing_alg } => {
            let alg_name = signing_alg
                .or(file.signing_alg.clone())
                .unwrap_or_else(|| "RS256".into());
            let alg = Alg::parse(&alg_name)
                .ok_or_else(|| anyhow::anyhow!("unknown signing alg {alg_name}"))?;
            if !store
                .signing_keys()
                .await?
                .iter()
                .any(|k| k.state == keycard_store::KeyState::Next)
            {
                bail!("no keys yet: start `keycard serve` once first");
            }
            let s = config::settings(file, &ServeArgs::default())?;
            keycard_server::keys::rotate(store, master, alg, SystemClock.now(), s.max_jwt_ttl())
                .await
                .map_err(anyhow::Error::msg)?;
            say(
                json_out,
                json!({ "rotated": true }),
                "rotated: the next key is active, the old one is retired, a new next key is published",
            );
        }
    }
    Ok(())
}

/// Raw argon2id computations per second on `threads` threads, each reusing one 19 MiB buffer —
/// the same primitive a login runs, with nothing else around it.
fn bench_argon2(seconds: u64, threads: usize, json_out: bool) -> anyhow::Result<()> {
    let phc = keycard_server::password::hash_blocking("correct horse battery staple")
        .map_err(anyhow::Error::msg)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let start = std::time::Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let phc = phc.clone();
            std::thread::spawn(move || {
                let mut memory = Vec::new();
                let mut n = 0u64;
                while std::time::Instant::now() < deadline {
                    let ok = keycard_server::password::verify_with_memory(
                        b"correct horse battery staple",
                        &phc,
                        &mut memory,
                    );
                    n += u64::from(ok);
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    let rate = total as f64 / start.elapsed().as_secs_f64();
    say(
        json_out,
        json!({ "hashes_per_sec": rate, "threads": threads }),
        &format!("{rate:.1} argon2id hashes/s on {threads} threads"),
    );
    Ok(())
}
