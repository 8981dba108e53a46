//! The authorization server as the gateway sees it: discovery (RFC 8414 §3; OpenID Connect
//! Discovery 1.0 §4), the token validator with its JWKS cache (RFC 9068 §4), RFC 7662
//! introspection with the gateway's cache, and the revocation feed when the provider
//! advertises one (`keycard_revocation_feed_endpoint`).
//!
//! [`Authority::start`] spawns discovery, retried with backoff until it succeeds; only then do
//! the [`Validator`], the introspector and the feed exist ([`Authority::ready`]), so until the
//! provider has been reached once, checked routes answer 503. After that an outage costs
//! nothing to `local` routes (the keys stay cached) and 503 to introspection. The feed evicts
//! the introspection cache as it applies events. HTTP to the provider goes through
//! a metered client, which counts discovery, JWKS and introspection requests for `/metrics`.
//!
//! Invariants: one authority per (issuer, audience, client, secret, cache TTL), reused across
//! reloads that keep those, so a reload neither drops cached keys nor reconnects the feed;
//! dropping the last reference stops its tasks. The client secret is held only by the feed and
//! the introspector, never logged.
//!
//! Not here: the policies built on it (`policy`), the introspection cache itself
//! (`introspection`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use keycard_protocol::discovery::ProviderMetadata;
use keycard_protocol::{Audience, ClientId, ClientSecret, Clock, Issuer};
use keycard_validate::feed::RevocationKind;
use keycard_validate::{
    BasicAuth, BoxFuture, FeedOptions, HttpClient, HttpError, HttpResponse, Introspector,
    RevocationFeed, StreamingResponse, Validator, ValidatorOptions,
};
use tokio::task::JoinHandle;

use crate::introspection::IntrospectionCache;
use crate::metrics::Metrics;

/// What identifies an authority across reloads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorityKey {
    pub issuer: String,
    pub audience: String,
    pub client_id: Option<String>,
    /// The SHA-256 of the secret, so a changed secret builds a new authority.
    pub secret_digest: Option<[u8; 32]>,
    pub cache_ttl: Option<Duration>,
}

/// Settings the tests adjust.
#[derive(Clone)]
pub struct AuthorityOptions {
    pub clock: Arc<dyn Clock>,
    pub http: Arc<dyn HttpClient>,
    pub feed: FeedOptions,
    pub jwks_min_refresh: Duration,
}

impl std::fmt::Debug for AuthorityOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorityOptions")
            .field("feed", &self.feed)
            .field("jwks_min_refresh", &self.jwks_min_refresh)
            .finish_non_exhaustive()
    }
}

/// What exists once discovery has succeeded.
#[derive(Debug)]
pub struct Ready {
    pub validator: Validator,
    pub introspector: Option<Introspector>,
    pub feed: Option<RevocationFeed>,
}

/// One authorization server, one audience, one set of client credentials.
pub struct Authority {
    pub key: AuthorityKey,
    pub audience: String,
    ready: Arc<OnceLock<Ready>>,
    pub cache: Arc<IntrospectionCache>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("key", &self.key)
            .field("ready", &self.ready.get().is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for Authority {
    fn drop(&mut self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            t.abort();
        }
    }
}

/// Why an authority could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    #[error("issuer: {0}")]
    Issuer(String),
    #[error("audience: {0}")]
    Audience(String),
    #[error("client_id: {0}")]
    ClientId(String),
}

impl Authority {
    /// Starts discovery in the background and returns at once.
    pub fn start(
        key: AuthorityKey,
        credentials: Option<(ClientId, ClientSecret)>,
        metrics: Arc<Metrics>,
        options: AuthorityOptions,
    ) -> Result<Arc<Authority>, AuthorityError> {
        let issuer = Issuer::from_wire(&key.issuer).map_err(AuthorityError::Issuer)?;
        let audience =
            Audience::parse(&key.audience).map_err(|e| AuthorityError::Audience(e.to_string()))?;
        let cache = Arc::new(IntrospectionCache::new(
            key.cache_ttl,
            100_000,
            options.clock.clone(),
            metrics.clone(),
        ));
        let ready = Arc::new(OnceLock::new());
        let authority = Arc::new(Authority {
            audience: key.audience.clone(),
            key,
            ready: ready.clone(),
            cache: cache.clone(),
            tasks: Mutex::new(Vec::new()),
        });
        let http: Arc<dyn HttpClient> = Arc::new(MeteredHttp {
            inner: options.http.clone(),
            metrics,
        });
        let weak = Arc::downgrade(&authority);
        let task = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(250);
            let doc = loop {
                match discover(&http, &issuer).await {
                    Ok(doc) => break doc,
                    Err(why) => {
                        tracing::warn!(issuer = issuer.as_str(), %why, "discovery failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            };
            let Some(authority) = weak.upgrade() else {
                return;
            };
            let built = build(&doc, issuer, audience, credentials, http, &options);
            if let Some(feed) = &built.feed {
                let mut tasks = authority
                    .tasks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                tasks.push(feed.spawn());
                tasks.push(tokio::spawn(evict_on_events(feed.clone(), cache)));
            }
            let _ = ready.set(built);
        });
        authority
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
        Ok(authority)
    }

    /// The validator, introspector and feed, once discovery has succeeded.
    pub fn ready(&self) -> Option<&Ready> {
        self.ready.get()
    }
}

async fn discover(http: &Arc<dyn HttpClient>, issuer: &Issuer) -> Result<ProviderMetadata, String> {
    let url = ProviderMetadata::discovery_url(issuer);
    let resp = tokio::time::timeout(Duration::from_secs(5), http.get(&url))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    if resp.status != 200 {
        return Err(format!("HTTP {}", resp.status));
    }
    ProviderMetadata::parse_for(&resp.body, issuer).map_err(|e| e.to_string())
}

fn build(
    doc: &ProviderMetadata,
    issuer: Issuer,
    audience: Audience,
    credentials: Option<(ClientId, ClientSecret)>,
    http: Arc<dyn HttpClient>,
    options: &AuthorityOptions,
) -> Ready {
    let feed = match (&doc.keycard_revocation_feed_endpoint, &credentials) {
        (Some(endpoint), Some((id, secret))) => Some(RevocationFeed::new(
            endpoint.clone(),
            id,
            secret,
            http.clone(),
            options.feed.clone().clock(options.clock.clone()),
        )),
        (None, _) => {
            tracing::warn!(
                issuer = issuer.as_str(),
                "the provider advertises no revocation feed: local routes cannot see revocations"
            );
            None
        }
        (Some(_), None) => {
            tracing::warn!(
                "no client_id: the revocation feed is not read, local routes cannot see revocations"
            );
            None
        }
    };
    let mut vopts = ValidatorOptions::default()
        .clock(options.clock.clone())
        .min_refresh_interval(options.jwks_min_refresh);
    if let Some(uri) = &doc.jwks_uri {
        vopts = vopts.jwks_uri(uri.clone());
    }
    if let Some(feed) = &feed {
        vopts = vopts.revocation_feed(feed.clone());
    }
    let introspector = match (&doc.introspection_endpoint, &credentials) {
        (Some(endpoint), Some((id, secret))) => Some(
            Introspector::new(endpoint.clone(), id, secret, http.clone())
                .with_clock(options.clock.clone()),
        ),
        _ => None,
    };
    Ready {
        validator: Validator::new(issuer, audience, http, vopts),
        introspector,
        feed,
    }
}

/// Evicts cached introspection answers as the feed reports revocations; a receiver that fell
/// behind clears the whole cache rather than guess what it missed.
async fn evict_on_events(feed: RevocationFeed, cache: Arc<IntrospectionCache>) {
    let mut rx = feed.subscribe();
    loop {
        match rx.recv().await {
            Ok(e) if matches!(e.kind, RevocationKind::Kid) => cache.clear(),
            Ok(e) => cache.evict(&e),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => cache.clear(),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The provider's HTTP client, counting what the gateway asks of the provider.
struct MeteredHttp {
    inner: Arc<dyn HttpClient>,
    metrics: Arc<Metrics>,
}

impl HttpClient for MeteredHttp {
    fn get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
        if url.ends_with("/.well-known/openid-configuration") {
            self.metrics
                .discovery_fetches
                .fetch_add(1, Ordering::Relaxed);
        } else {
            // Discovery is the only other GET through `get`: everything else is a JWKS.
            self.metrics.jwks_fetches.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.get(url)
    }

    fn post_form<'a>(
        &'a self,
        url: &'a str,
        auth: &'a BasicAuth,
        form: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
        self.metrics.introspections.fetch_add(1, Ordering::Relaxed);
        self.inner.post_form(url, auth, form)
    }

    fn get_streaming<'a>(
        &'a self,
        url: &'a str,
        auth: &'a BasicAuth,
        headers: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<StreamingResponse, HttpError>> {
        self.inner.get_streaming(url, auth, headers)
    }
}
