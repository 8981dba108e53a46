//! The server's shared state ([`App`]): the store, settings, keys, clock, password checker,
//! templates, the precomputed discovery document, and short-lived caches of clients and APIs.
//!
//! [`App::new`] loads (or creates) the signing keys and serialises discovery once;
//! [`spawn_background`] starts the key reload and the janitor. Handlers read time through
//! [`App::now`], never the system clock.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use keycard_protocol::policy::{Api, Client};
use keycard_protocol::{Audience, ClientId, Clock, Kid, UnixTime};
use keycard_store::{Revocation, Store, StoreError};

use crate::cache::TtlCache;
use crate::crypto::MasterKey;
use crate::feed::FeedHub;
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
    /// New login transactions per client address (in memory, per node: a bound on what an
    /// unauthenticated flood can make us write, not an exact count).
    txn_limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// New revocation events, for the feed streams this node serves.
    pub(crate) feed: FeedHub,
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
        // Where the revocation feed starts: the log's end now (no event is after `u64::MAX`).
        let log_end = store.revocations_since(u64::MAX, 1).await?.last;
        Ok(Arc::new(App {
            store,
            keys,
            clock,
            passwords: Passwords::new(),
            templates: Templates::new().map_err(StartError::Templates)?,
            discovery,
            txn_limiter: RateLimiter::keyed(txn_quota(settings.txn_per_minute)),
            feed: FeedHub::new(settings.feed_poll, log_end),
            clients: TtlCache::new(settings.cache_ttl, 10_000),
            apis: TtlCache::new(settings.cache_ttl, 10_000),
            settings,
        }))
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// A revocation made now, mattering as long as any token we signed may live.
    pub(crate) fn revocation(&self) -> Revocation {
        let at = self.now();
        Revocation {
            at,
            until: at.plus(self.settings.max_jwt_ttl()),
        }
    }

    /// Runs a store call that revokes something, then tells this node's introspection cache
    /// (`verified`), which must not answer from before it.
    pub(crate) async fn revoking<T>(
        &self,
        write: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let out = write.await;
        self.feed.wrote();
        out
    }

    /// Rotates the signing keys when the active one has signed for `period`; of several
    /// nodes, the store lets one win. Failures are logged and retried at the next tick.
    async fn rotate_keys_if_due(&self, period: i64) {
        let current = self.keys.current();
        let now = self.now();
        // The keys in memory say whether it is due; only then is a key generated and the
        // store asked (which decides between nodes).
        if now.since(current.active_since) < period {
            return;
        }
        let alg = current.alg();
        let master = self.keys.master();
        let max = self.settings.max_jwt_ttl();
        match crate::keys::rotate(&self.store, master, alg, now, max, Some(period)).await {
            Ok(true) => tracing::info!("scheduled key rotation: the next key is active"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "scheduled key rotation failed"),
        }
    }

    /// The server is shutting down: long-lived answers (the revocation feed's streams) end,
    /// so the listener's graceful shutdown only waits for ordinary requests.
    pub fn begin_shutdown(&self) {
        self.feed.close();
    }

    /// Whether `ip` may start another login transaction now.
    pub(crate) fn may_start_txn(&self, ip: IpAddr) -> bool {
        self.txn_limiter.check_key(&ip).is_ok()
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
                let load = || async { Ok(self.store.api(t).await?.map(Arc::new)) };
                self.apis.get_or_load(t.as_str(), load).await
            }
            None => Ok(None),
        }
    }

    /// Loads a client (cached for `Settings::cache_ttl`).
    pub(crate) async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        let load = || async { Ok(self.store.client(id).await?.map(Arc::new)) };
        self.clients.get_or_load(id.as_str(), load).await
    }
}

/// The transaction quota: `per_minute` with a burst of as many (0 means 1).
fn txn_quota(per_minute: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN))
}

/// Starts the background tasks: key reload (rotation by another process, scheduled
/// rotation), the janitor, the revocation feed's poller and the back-channel logout sender.
pub fn spawn_background<S: Store>(app: &Arc<App<S>>) {
    FeedHub::spawn(app);
    crate::backchannel::spawn(app);
    let a = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(a.settings.key_reload);
        loop {
            tick.tick().await;
            if let Some(period) = a.settings.key_rotation_secs {
                a.rotate_keys_if_due(period).await;
            }
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
            a.txn_limiter.retain_recent();
            // A session that ran out ends as a logout does (back-channel logouts, the feed's
            // `sid` event) before the sweep deletes what is left.
            match a
                .revoking(a.store.end_expired_sessions(a.revocation(), 500))
                .await
            {
                Ok(n) if n > 0 => tracing::info!(sessions = n, "expired sessions ended"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "ending expired sessions failed"),
            }
            match a.store.purge_expired(a.now()).await {
                Ok(n) if n > 0 => tracing::info!(rows = n, "purged expired rows"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purge failed"),
            }
        }
    });
}
