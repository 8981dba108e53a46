//! [`Bff`]: the settings, the discovered provider, the store and the sealer behind one cheap
//! handle, and the router an application merges.
//!
//! [`Bff::new`] discovers the provider (so a misconfigured issuer fails at start-up, not at
//! the first login); [`Bff::router`] answers the BFF routes under the prefix and the API proxy
//! under the proxy prefix; [`Bff::layer`] lets the application's own handlers use
//! [`crate::BffSession`]. [`Bff::end_sessions`] is what back-channel logout calls, and what a
//! revocation-feed subscriber would call for `sid` and `sub` events.
//!
//! Not here: the routes (`routes`, `proxy`), sessions and refresh (`session`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get, post};
use keycard_os::SystemClock;
use keycard_protocol::{Clock, SessionId, Subject, UnixTime};
use keycard_validate::{HttpClient, ReqwestClient};

use crate::config::Settings;
use crate::error::BffError;
use crate::provider::Provider;
use crate::seal::Sealer;
use crate::store::{BffStore, SessionHash};
use crate::{layer, proxy, routes};

/// Injected dependencies: the clock and the HTTP client for the provider.
#[derive(Clone)]
pub struct BffOptions {
    clock: Arc<dyn Clock>,
    http: Option<Arc<dyn HttpClient>>,
}

impl Default for BffOptions {
    fn default() -> BffOptions {
        BffOptions {
            clock: Arc::new(SystemClock),
            http: None,
        }
    }
}

impl std::fmt::Debug for BffOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BffOptions")
            .field("custom_http", &self.http.is_some())
            .finish_non_exhaustive()
    }
}

impl BffOptions {
    /// The time source; default the system clock.
    pub fn clock(mut self, clock: impl Clock) -> BffOptions {
        self.clock = Arc::new(clock);
        self
    }

    /// The HTTP client for discovery, keys, tokens and revocation; default
    /// `keycard_validate::ReqwestClient` (no redirects, 256 KiB bodies). Every call is also
    /// bounded by the settings' `http_timeout`.
    pub fn http(mut self, http: Arc<dyn HttpClient>) -> BffOptions {
        self.http = Some(http);
        self
    }
}

/// The backend-for-frontend. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct Bff {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) settings: Settings,
    pub(crate) provider: Provider,
    pub(crate) store: Arc<dyn BffStore>,
    pub(crate) sealer: Sealer,
    pub(crate) clock: Arc<dyn Clock>,
    /// The API proxy's client: no redirects, no cookies, per-route timeouts.
    pub(crate) upstream: reqwest::Client,
    /// One lock per session being refreshed in this process (the store's lock covers other
    /// processes): waiters re-read the session instead of refreshing again.
    pub(crate) refresh_locks: Mutex<HashMap<[u8; 32], Weak<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Bff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bff")
            .field("issuer", &self.inner.settings.issuer)
            .field("client_id", &self.inner.settings.client_id)
            .field("provider", &self.inner.provider)
            .finish_non_exhaustive()
    }
}

impl Bff {
    /// Discovers the provider and builds the BFF.
    pub async fn new(
        settings: Settings,
        store: Arc<dyn BffStore>,
        options: BffOptions,
    ) -> Result<Bff, BffError> {
        let http: Arc<dyn HttpClient> = match options.http {
            Some(h) => h,
            None => Arc::new(ReqwestClient::new().map_err(|e| BffError::Internal(e.to_string()))?),
        };
        let provider = Provider::discover(&settings, http, options.clock.clone()).await?;
        let sealer = Sealer::new(&settings.session_key, &settings.previous_session_keys)
            .map_err(|e| BffError::Internal(e.to_string()))?;
        let upstream = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| BffError::Internal(e.to_string()))?;
        Ok(Bff {
            inner: Arc::new(Inner {
                settings,
                provider,
                store,
                sealer,
                clock: options.clock,
                upstream,
                refresh_locks: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The validated settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The BFF's routes — `{prefix}/login`, `/callback`, `/session`, `/logout`,
    /// `/backchannel-logout` — and the API proxy under the proxy prefix, ready to merge into
    /// the application's router.
    pub fn router(&self) -> Router {
        let p = self.inner.settings.prefix_str();
        let api = self
            .inner
            .settings
            .proxy_prefix
            .as_str()
            .trim_end_matches('/');
        Router::new()
            .route(&format!("{p}/login"), get(routes::login::login_get))
            .route(
                &format!("{p}/callback"),
                get(routes::callback::callback_get),
            )
            .route(&format!("{p}/session"), get(routes::session::session_get))
            .route(&format!("{p}/logout"), post(routes::logout::logout_post))
            .route(
                &format!("{p}/backchannel-logout"),
                post(routes::backchannel::backchannel_logout_post),
            )
            .route(api, any(proxy::proxy))
            .route(&format!("{api}/"), any(proxy::proxy))
            .route(&format!("{api}/{{*rest}}"), any(proxy::proxy))
            .with_state(self.clone())
    }

    /// The tower layer that makes [`crate::BffSession`] available to the application's own
    /// handlers.
    pub fn layer(&self) -> layer::BffLayer {
        layer::BffLayer::new(self.clone())
    }

    /// Ends every session of this provider matching `sub` and/or `sid` (at least one must be
    /// given) and returns how many ended: back-channel logout, or a revocation-feed event.
    pub async fn end_sessions(
        &self,
        sub: Option<&Subject>,
        sid: Option<&SessionId>,
    ) -> Result<u64, BffError> {
        if sub.is_none() && sid.is_none() {
            return Ok(0);
        }
        let n = self
            .inner
            .store
            .end_sessions(&self.inner.settings.issuer, sub, sid)
            .await?;
        tracing::info!(ended = n, "sessions ended by the provider");
        Ok(n)
    }

    /// Deletes expired sessions, logins and logout-token ids.
    pub async fn purge_expired(&self) -> Result<u64, BffError> {
        Ok(self.inner.store.purge_expired(self.now()).await?)
    }

    /// Runs [`Bff::purge_expired`] every `every` on the current tokio runtime.
    pub fn spawn_janitor(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let bff = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = bff.purge_expired().await {
                    tracing::warn!(error = %e, "BFF janitor failed");
                }
            }
        })
    }

    pub(crate) fn now(&self) -> UnixTime {
        self.inner.clock.now()
    }

    /// This process's refresh lock for a session.
    pub(crate) fn refresh_lock(&self, id: &SessionHash) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self
            .inner
            .refresh_locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key: [u8; 32] = {
            let mut k = [0u8; 32];
            k.copy_from_slice(id.as_bytes());
            k
        };
        if let Some(lock) = map.get(&key).and_then(Weak::upgrade) {
            return lock;
        }
        if map.len() > 1024 {
            map.retain(|_, w| w.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(key, Arc::downgrade(&lock));
        lock
    }
}
