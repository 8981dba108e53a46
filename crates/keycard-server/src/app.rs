//! The server's shared state ([`App`]): the store, settings, keys, clock, password checker,
//! templates, the precomputed discovery document, and short-lived caches of clients and APIs.
//!
//! [`App::new`] loads (or creates) the signing keys and serialises discovery once;
//! [`spawn_background`] starts the key reload and the janitor. Handlers read time through
//! [`App::now`], never the system clock.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use keycard_protocol::policy::{Api, Client};
use keycard_protocol::{Audience, ClientId, Clock, Kid, UnixTime};
use keycard_store::{Store, StoreError};

use crate::cache::TtlCache;
use crate::crypto::MasterKey;
use crate::keys::{KeyLoadError, KeyManager};
use crate::password::Passwords;
use crate::settings::Settings;
use crate::templates::Templates;

/// Shared state of the server.
pub struct App<S: Store> {
    pub store: S,
    pub settings: Settings,
    pub(crate) keys: KeyManager,
    pub clock: Arc<dyn Clock>,
    pub(crate) passwords: Passwords,
    pub(crate) templates: Templates,
    /// The discovery document, serialised once at start-up.
    pub(crate) discovery: Bytes,
    clients: TtlCache<Arc<Client>>,
    apis: TtlCache<Arc<Api>>,
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
    Store(#[from] StoreError),
    #[error("keys: {0}")]
    Keys(String),
    #[error("templates: {0}")]
    Templates(String),
}

impl From<KeyLoadError> for StartError {
    fn from(e: KeyLoadError) -> Self {
        match e {
            KeyLoadError::Store(e) => StartError::Store(e),
            KeyLoadError::Keys(e) => StartError::Keys(e),
        }
    }
}

impl<S: Store> App<S> {
    /// Builds the state: loads (or creates) signing keys and precomputes discovery.
    pub async fn new(
        store: S,
        settings: Settings,
        master_key: MasterKey,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<App<S>>, StartError> {
        let keys = KeyManager::load_or_create(&store, master_key, &settings, clock.now()).await?;
        let discovery = crate::routes::discovery::document(&settings, keys.current().alg());
        Ok(Arc::new(App {
            store,
            keys,
            clock,
            passwords: Passwords::new(),
            templates: Templates::new().map_err(StartError::Templates)?,
            discovery,
            clients: TtlCache::new(settings.cache_ttl, 10_000),
            apis: TtlCache::new(settings.cache_ttl, 10_000),
            settings,
        }))
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Re-reads the signing keys now (every node also does it every `Settings::key_reload`);
    /// true when they changed.
    pub async fn reload_keys(&self) -> Result<bool, String> {
        self.keys.reload(&self.store).await
    }

    /// The id of the key that signs new tokens.
    pub fn active_kid(&self) -> Kid {
        self.keys.current().active.kid().clone()
    }

    /// Loads an API for policy decisions (cached for `Settings::cache_ttl`).
    pub(crate) async fn api(
        &self,
        target: Option<&Audience>,
    ) -> Result<Option<Arc<Api>>, StoreError> {
        match target {
            Some(t) => {
                let load = async { Ok(self.store.api(t).await?.map(Arc::new)) };
                self.apis.get_or_load(t.as_str(), load).await
            }
            None => Ok(None),
        }
    }

    /// Loads a client (cached for `Settings::cache_ttl`).
    pub(crate) async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        let load = async { Ok(self.store.client(id).await?.map(Arc::new)) };
        self.clients.get_or_load(id.as_str(), load).await
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
