//! `keycard demo`: every role of the seed's system in one process, ready for a browser; and
//! `keycard demo-api`, the photos/orders resource server alone.
//!
//! [`run`] binds every listener first (a port in use fails the start before anything is
//! written), opens the demo's data folder (`--dir`, SQLite, reused on the next start), seeds it
//! ([`seed::seed`]), then starts, in this order because each needs the one before:
//! - the authorization server on `--addr` (http://127.0.0.1:8080);
//! - the demo API on `--api-addr` (:9090), validating tokens itself (`crate::demo_api`);
//! - the gateway on `--gateway-addr` (:8081): `GET /photos` checked locally with the
//!   revocation feed, `POST /orders` introspected, both forwarded to the demo API;
//! - the web app on `--app-addr` (:3000): `keycard_demo`'s page on `keycard-bff`, whose proxy
//!   sends `/api/photos` and `/api/orders` through the gateway.
//!
//! It then prints the URLs and credentials (with `--json`, one JSON line) and serves until
//! SIGINT or SIGTERM, when every listener drains and the process exits.
//!
//! Not here: what is seeded (`seed`), the page (`keycard_demo`), the demo API's routes
//! (`crate::demo_api`).

mod seed;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use keycard_protocol::{Audience, ClientId, Clock as _, Issuer};
use keycard_server::{App, DEMO_API, SystemClock};
use tokio::net::TcpListener;

use crate::cmd::open_store;
use crate::cmd::serve::{ServeArgs, init_logging, shutdown_signal};
use crate::{config, demo_api, listen};

#[derive(Args, Debug)]
pub(crate) struct DemoApiArgs {
    #[arg(long, default_value = "127.0.0.1:9090")]
    addr: String,
    /// The Keycard issuer URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    issuer: String,
    /// This API's audience identifier.
    #[arg(long, default_value = "https://api.example.com")]
    audience: String,
}

/// `keycard demo-api`.
pub(crate) async fn run_api(args: DemoApiArgs) -> anyhow::Result<()> {
    init_logging("text");
    demo_api::run(&args.addr, &args.issuer, &args.audience).await
}

#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// The demo's data folder (its databases and master key), reused on the next start.
    #[arg(long, default_value = "keycard-demo", env = "KEYCARD_DEMO_DIR")]
    dir: PathBuf,
    /// The web app's listen address.
    #[arg(long, default_value = "127.0.0.1:3000")]
    app_addr: String,
    /// The gateway's listen address.
    #[arg(long, default_value = "127.0.0.1:8081")]
    gateway_addr: String,
    /// The demo API's listen address.
    #[arg(long, default_value = "127.0.0.1:9090")]
    api_addr: String,
    /// The authorization server's flags (`--addr`, default 127.0.0.1:8080, and the rest).
    #[command(flatten)]
    serve: ServeArgs,
}

async fn bind(what: &str, addr: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("the demo's {what} cannot listen on {addr} (use --{what}-addr)"))
}

/// The demo's database: the one named with `--database-url` (or in the file), else
/// `DIR/keycard.db`.
fn database_url(dir: &Path, given: Option<&str>) -> String {
    match given {
        Some(url) => url.to_owned(),
        None => format!("sqlite://{}", dir.join("keycard.db").display()),
    }
}

/// `keycard demo`.
pub(crate) async fn run(
    given_db_url: Option<&str>,
    file: &config::FileConfig,
    args: DemoArgs,
    json: bool,
) -> anyhow::Result<()> {
    let started = Instant::now();
    init_logging(
        args.serve
            .log_format
            .as_deref()
            .or(file.log_format.as_deref())
            .unwrap_or("text"),
    );
    let mut settings = config::settings(file, &args.serve)?;
    settings.demo = true;
    let as_addr = config::addr(file, &args.serve);
    let options = listen::serve_options(file, &args.serve.listen)?;
    let as_listener = bind("authorization server", &as_addr).await?;
    let api_listener = bind("api", &args.api_addr).await?;
    let gw_listener = bind("gateway", &args.gateway_addr).await?;
    let app_listener = bind("app", &args.app_addr).await?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    // The folder holds password hashes, the master key and the web app's sessions: only its
    // owner may enter it, whatever the files' own modes.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&args.dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", args.dir.display()))?;
    }
    let db_url = database_url(&args.dir, given_db_url);
    let master = config::master_key(file, &db_url)?;
    let store = open_store(&db_url, !args.serve.no_migrate).await?;
    let issuer = settings.issuer.clone();
    let app_origin = format!("http://{}", args.app_addr);
    let gateway_url = format!("http://{}", args.gateway_addr);
    let api_url = format!("http://{}", args.api_addr);
    let clock = Arc::new(SystemClock);
    let seeded = seed::seed(&store, &settings, &app_origin, clock.now()).await?;

    let app = App::new(store, settings, master, clock).await?;
    keycard_server::metrics_handle();
    keycard_server::spawn_background(&app);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = move || {
        let mut rx = stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let closing = app.clone();
    let mut tasks = vec![tokio::spawn(keycard_serve::serve(
        as_listener,
        keycard_server::router(app),
        options.clone(),
        until_stopped(),
    ))];

    let api = demo_api::router(
        &issuer,
        &Audience::parse(DEMO_API)?,
        &ClientId::parse(seed::API_CLIENT)?,
        &seeded.api,
    )?;
    tasks.push(tokio::spawn(keycard_serve::serve(
        api_listener,
        api,
        options.clone(),
        until_stopped(),
    )));

    let gateway = start_gateway(&issuer, &args.gateway_addr, &api_url, &seeded)?;
    let gateway_task = tokio::spawn(keycard_gateway::serve::serve(
        gw_listener,
        gateway.0,
        gateway.1,
    ));

    let web = web_app(&issuer, &app_origin, &gateway_url, &args.dir, &seeded).await?;
    tasks.push(tokio::spawn(keycard_serve::serve(
        app_listener,
        web,
        options,
        until_stopped(),
    )));

    announce(
        json,
        &Urls {
            app: &app_origin,
            issuer: issuer.as_str(),
            gateway: &gateway_url,
            api: &api_url,
        },
        &seeded,
        started,
    )?;
    shutdown_signal().await;
    tracing::info!("stopping the demo");
    // The gateway goes first (it holds a feed stream open), then every listener drains.
    gateway_task.abort();
    closing.begin_shutdown();
    let _ = stop.send(true);
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}

/// The gateway of the demo: its configuration is built here, as a file would say it.
fn start_gateway(
    issuer: &Issuer,
    listen: &str,
    api_url: &str,
    seeded: &seed::Seeded,
) -> anyhow::Result<(keycard_gateway::Gateway, keycard_gateway::config::Limits)> {
    let toml = format!(
        r#"listen = "{listen}"
issuer = "{issuer}"
audience = "{DEMO_API}"
client_id = "{client}"
client_secret_env = "KEYCARD_DEMO_GATEWAY_SECRET"

[[route]]
path = "/photos"
methods = ["GET"]
upstream = "{api_url}"
auth = "local"
scopes = ["photos:read"]
forward_authorization = true

[[route]]
path = "/orders"
methods = ["POST"]
upstream = "{api_url}"
auth = "introspect"
scopes = ["orders:write"]
forward_authorization = true
"#,
        issuer = issuer.as_str(),
        client = seed::GATEWAY,
    );
    let config = keycard_gateway::config::GatewayConfig::parse(&toml)
        .map_err(|e| anyhow::anyhow!("the demo's gateway configuration: {e}"))?;
    let limits = *config.limits();
    let gateway = keycard_gateway::Gateway::new(
        config,
        Some(seeded.gateway.secret()),
        keycard_gateway::GatewayOptions::default(),
    )?;
    Ok((gateway, limits))
}

/// The web app: the demo page and the BFF, which signs in at `issuer` as `demo-web`.
async fn web_app(
    issuer: &Issuer,
    origin: &str,
    gateway: &str,
    dir: &Path,
    seeded: &seed::Seeded,
) -> anyhow::Result<axum::Router> {
    // A new key on every start: the web app's client is created again too, so sessions of an
    // earlier run could not be used anyway.
    let session_key = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(keycard_os::random_bytes::<32>())
    };
    let toml = format!(
        r#"issuer = "{issuer}"
client_id = "{client}"
public_origin = "{origin}"
allow_http = true
scope = "openid profile email offline_access photos:read orders:write"
resource = ["{DEMO_API}"]

[[proxy.routes]]
path = "/api/photos"
upstream = "{gateway}/photos"
methods = ["GET"]
strip_prefix = true
refresh_on_401 = false

[[proxy.routes]]
path = "/api/orders"
upstream = "{gateway}/orders"
methods = ["POST"]
strip_prefix = true
refresh_on_401 = false
"#,
        issuer = issuer.as_str(),
        client = seed::WEB,
    );
    let settings = keycard_bff::BffConfig::from_toml_str(&toml)?
        .with_env([
            (
                "KEYCARD_BFF_CLIENT_SECRET".to_owned(),
                seeded.web.secret().to_owned(),
            ),
            ("KEYCARD_BFF_SESSION_KEY".to_owned(), session_key),
        ])
        .build()?;
    let url = format!("sqlite://{}", dir.join("bff.db").display());
    let store = keycard_bff::store::sql::connect(&url).await?;
    let bff = keycard_bff::Bff::new(settings, store, keycard_bff::BffOptions::default()).await?;
    bff.spawn_janitor(std::time::Duration::from_secs(300));
    let links = keycard_demo::Links {
        issuer: issuer.as_str().to_owned(),
        gateway: gateway.to_owned(),
    };
    Ok(keycard_demo::router(links)
        .merge(bff.router())
        .layer(bff.layer()))
}

struct Urls<'a> {
    app: &'a str,
    issuer: &'a str,
    gateway: &'a str,
    api: &'a str,
}

/// Prints where everything is: for people, or one JSON line for scripts.
fn announce(
    json: bool,
    u: &Urls<'_>,
    seeded: &seed::Seeded,
    started: Instant,
) -> anyhow::Result<()> {
    let ms = started.elapsed().as_millis();
    let mut out = std::io::stdout().lock();
    if json {
        let line = serde_json::json!({
            "app": u.app,
            "issuer": u.issuer,
            "gateway": u.gateway,
            "api": u.api,
            "username": "alice",
            "password": seeded.password,
            "m2m_client_id": seed::M2M,
            "m2m_client_secret": seeded.m2m.secret(),
            "startup_ms": ms,
        });
        writeln!(out, "{line}")?;
    } else {
        writeln!(
            out,
            "\nKeycard demo is running (started in {ms} ms):\n\n  \
             Web app:      open {app}  and sign in as  alice / {password}\n  \
             Keycard:      {iss}  (the authorization server; by hand: {iss}/demo)\n  \
             Gateway:      {gw}  (GET /photos checked locally, POST /orders introspected)\n  \
             Demo API:     {api}\n  \
             Machine:      curl -s -X POST {iss}/token -d grant_type=client_credentials \\\n                  \
             -d client_id={m2m} -d client_secret={secret}\n\n  \
             (The password and secrets are new on every start. Ctrl-C stops everything.)\n",
            app = u.app,
            password = seeded.password,
            iss = u.issuer,
            gw = u.gateway,
            api = u.api,
            m2m = seed::M2M,
            secret = seeded.m2m.secret(),
        )?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_database_lives_in_its_folder_unless_named() {
        let dir = std::path::Path::new("keycard-demo");
        assert_eq!(
            super::database_url(dir, None),
            "sqlite://keycard-demo/keycard.db"
        );
        assert_eq!(
            super::database_url(dir, Some("postgres://x/y")),
            "postgres://x/y"
        );
    }
}
