//! The Keycard authorization server: axum routes around the pure rules of keycard-protocol.
//!
//! Entry points: [`App::new`] builds the shared state from a [`Store`] and [`Settings`];
//! [`router`] returns the axum `Router`; [`spawn_background`] starts the key-reload and janitor
//! tasks. Each handler follows parse → load → decide → persist → respond: parsing and deciding
//! are keycard-protocol functions, loading and persisting are `Store` calls.
//!
//! Invariants: only this crate sees axum, templates and the store together; errors reach the
//! wire only through [`error::ServerError`], which delegates to `keycard_protocol::wire`;
//! handlers read time from [`Clock`] and never log secrets (tokens, codes, passwords, keys).

pub mod cache;
pub mod clock;
pub mod crypto;
pub mod error;
pub mod keys;
pub mod metrics;
pub mod password;
pub mod routes;
pub mod templates;
pub mod throttle;

use std::sync::Arc;
use std::time::Duration;

use keycard_jose::Alg;
use keycard_protocol::policy::{Api, Client};
use keycard_protocol::{Issuer, UnixTime};
use keycard_store::Store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use routes::router;

/// Server settings, already validated (the CLI parses files and environment into this).
#[derive(Clone, Debug)]
pub struct Settings {
    pub issuer: Issuer,
    pub signing_alg: Alg,
    pub access_token_ttl_secs: i64,
    pub id_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    /// Authorization codes live at most 60 s (FAPI 2.0; RFC 6749 recommends ≤ 10 min).
    pub code_ttl_secs: i64,
    pub session_ttl_secs: i64,
    /// How long a login/consent transaction may stay open.
    pub txn_ttl_secs: i64,
    /// How often signing keys are re-read from the store (rotation by another process).
    pub key_reload: Duration,
    /// How long clients and APIs are served from memory before being re-read.
    pub cache_ttl: Duration,
    /// Adds the `/demo` pages that help walk the README quickstart.
    pub demo: bool,
}

impl Settings {
    pub fn new(issuer: Issuer) -> Settings {
        Settings {
            issuer,
            signing_alg: Alg::RS256,
            access_token_ttl_secs: 3600,
            id_token_ttl_secs: 3600,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            code_ttl_secs: 60,
            session_ttl_secs: 24 * 3600,
            txn_ttl_secs: 600,
            key_reload: Duration::from_secs(2),
            cache_ttl: Duration::from_secs(1),
            demo: false,
        }
    }

    /// The longest lifetime of any JWT this server signs: a retired key stays published that long.
    pub fn max_jwt_ttl(&self) -> i64 {
        self.access_token_ttl_secs
            .max(self.id_token_ttl_secs)
            .max(24 * 3600)
    }

    /// Cookies get the `__Host-` prefix and `Secure` when the issuer is https.
    pub fn cookie_name(&self, base: &str) -> String {
        if self.issuer.is_https() {
            format!("__Host-{base}")
        } else {
            base.to_owned()
        }
    }
}

/// Shared state of the server.
pub struct App<S: Store> {
    pub store: S,
    pub settings: Settings,
    pub keys: keys::KeyManager,
    pub clock: Arc<dyn Clock>,
    pub passwords: password::Passwords,
    pub templates: templates::Templates,
    /// The discovery document, serialised once at start-up.
    pub discovery: axum::body::Bytes,
    clients: cache::TtlCache<Arc<Client>>,
    apis: cache::TtlCache<Arc<Api>>,
}

impl<S: Store> std::fmt::Debug for App<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Errors while starting the server.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("storage: {0}")]
    Store(#[from] keycard_store::StoreError),
    #[error("keys: {0}")]
    Keys(String),
    #[error("templates: {0}")]
    Templates(String),
}

impl<S: Store> App<S> {
    /// Builds the state: loads (or creates) signing keys and precomputes discovery.
    pub async fn new(
        store: S,
        settings: Settings,
        master_key: crypto::MasterKey,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<App<S>>, StartError> {
        let keys =
            keys::KeyManager::load_or_create(&store, master_key, &settings, clock.now()).await?;
        let discovery = routes::discovery::document(&settings, keys.current().alg());
        Ok(Arc::new(App {
            store,
            keys,
            clock,
            passwords: password::Passwords::new(),
            templates: templates::Templates::new().map_err(StartError::Templates)?,
            discovery,
            clients: cache::TtlCache::new(settings.cache_ttl, 10_000),
            apis: cache::TtlCache::new(settings.cache_ttl, 10_000),
            settings,
        }))
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Loads an API for policy decisions (cached for `Settings::cache_ttl`).
    pub async fn api(
        &self,
        target: Option<&str>,
    ) -> Result<Option<Arc<Api>>, keycard_store::StoreError> {
        match target {
            Some(t) => {
                let load = async { Ok(self.store.api(t).await?.map(Arc::new)) };
                self.apis.get_or_load(t, load).await
            }
            None => Ok(None),
        }
    }

    /// Loads a client (cached for `Settings::cache_ttl`).
    pub async fn client(&self, id: &str) -> Result<Option<Arc<Client>>, keycard_store::StoreError> {
        let load = async { Ok(self.store.client(id).await?.map(Arc::new)) };
        self.clients.get_or_load(id, load).await
    }
}

/// Starts the background tasks: key reload (rotation by another process) and the janitor.
pub fn spawn_background<S: Store>(app: &Arc<App<S>>) {
    let a = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(a.settings.key_reload);
        loop {
            tick.tick().await;
            if let Err(e) = a.keys.reload(&a.store).await {
                tracing::warn!(error = %e, "signing key reload failed");
            }
        }
    });
    let a = app.clone();
    tokio::spawn(async move {
        // The first sweep waits a full period: start-up is not the moment for maintenance.
        let period = Duration::from_secs(60);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tick.tick().await;
            match a.store.purge_expired(a.now()).await {
                Ok(n) if n > 0 => tracing::info!(rows = n, "purged expired rows"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purge failed"),
            }
        }
    });
}
