//! An RFC 7662 token introspection client with an optional short cache.
//!
//! [`Introspector::introspect`] POSTs `token` and `token_type_hint=access_token` to the
//! introspection endpoint, authenticated with `client_secret_basic` (RFC 6749 §2.3.1), and parses
//! the answer into [`Introspection`].
//!
//! The cache is keyed by the SHA-256 of the token (the token itself is never stored). An active
//! answer is kept for at most the configured TTL and never past the token's `exp`; an active
//! answer without `exp` is kept for the TTL. Inactive answers are cached for the same short TTL:
//! a token that is inactive now does not become active again in practice, and this keeps replays
//! of a bad token from reaching the authorization server. Revocation therefore takes effect
//! after at most the TTL; leave the cache off when that is too long.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keycard_os::SystemClock;
use keycard_protocol::introspect::IntrospectionResponse;
use keycard_protocol::{ClientId, ClientSecret, Clock, UnixTime};

use crate::MAX_TOKEN_BYTES;
use crate::http::{BasicAuth, HttpClient, HttpError};

/// An introspection answer (RFC 7662 §2.2): the protocol's typed document. For an inactive token
/// only `active` is meaningful.
pub type Introspection = IntrospectionResponse;

/// Why introspection failed (as opposed to answering "inactive").
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntrospectionError {
    /// The HTTP exchange failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// No answer within the timeout.
    #[error("introspection timed out")]
    Timeout,
    /// A status other than 200, e.g. 401 when the client credentials are wrong.
    #[error("introspection endpoint answered HTTP {0}")]
    Status(u16),
    /// The answer is not an RFC 7662 response.
    #[error("malformed introspection response: {0}")]
    Malformed(&'static str),
}

/// An RFC 7662 client for one endpoint and one set of client credentials.
pub struct Introspector {
    endpoint: String,
    auth: BasicAuth,
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    timeout: Duration,
    cache: Option<Cache>,
}

struct Cache {
    ttl: i64,
    max_entries: usize,
    entries: Mutex<HashMap<[u8; 32], (Introspection, UnixTime)>>,
}

impl fmt::Debug for Introspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspector")
            .field("endpoint", &self.endpoint)
            .field("auth", &self.auth)
            .field("timeout", &self.timeout)
            .field("cache_ttl", &self.cache.as_ref().map(|c| c.ttl))
            .finish_non_exhaustive()
    }
}

impl Introspector {
    /// A client for `endpoint` (e.g. `{issuer}/introspect`) authenticating as `client_id`.
    /// No cache, a 5 s timeout and the system clock.
    pub fn new(
        endpoint: impl Into<String>,
        client_id: &ClientId,
        client_secret: &ClientSecret,
        http: Arc<dyn HttpClient>,
    ) -> Introspector {
        Introspector {
            endpoint: endpoint.into(),
            auth: BasicAuth::new(client_id, client_secret),
            http,
            clock: Arc::new(SystemClock),
            timeout: Duration::from_secs(5),
            cache: None,
        }
    }

    /// Caches answers for at most `ttl` (and never past the token's `exp`), keeping at most
    /// `max_entries`; when full, new answers are not cached until old ones expire.
    pub fn with_cache(mut self, ttl: Duration, max_entries: usize) -> Introspector {
        self.cache = Some(Cache {
            ttl: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
            max_entries,
            entries: Mutex::new(HashMap::new()),
        });
        self
    }

    /// The time source for the cache; default [`SystemClock`].
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Introspector {
        self.clock = Arc::new(clock);
        self
    }

    /// The request timeout; default 5 s.
    pub fn with_timeout(mut self, timeout: Duration) -> Introspector {
        self.timeout = timeout;
        self
    }

    /// Asks the authorization server about `token` (RFC 7662 §2.1).
    ///
    /// A token longer than [`MAX_TOKEN_BYTES`](crate::MAX_TOKEN_BYTES) is reported inactive
    /// without a request.
    pub async fn introspect(&self, token: &str) -> Result<Introspection, IntrospectionError> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Ok(Introspection::inactive());
        }
        let key = token_digest(token);
        let now = self.clock.now();
        if let Some(hit) = self.cache.as_ref().and_then(|c| c.get(&key, now)) {
            return Ok(hit);
        }
        let form = [("token", token), ("token_type_hint", "access_token")];
        let resp = tokio::time::timeout(
            self.timeout,
            self.http.post_form(&self.endpoint, &self.auth, &form),
        )
        .await
        .map_err(|_| IntrospectionError::Timeout)??;
        if resp.status != 200 {
            return Err(IntrospectionError::Status(resp.status));
        }
        let answer = IntrospectionResponse::parse(&resp.body)
            .map_err(|e| IntrospectionError::Malformed(e.0))?;
        if let Some(cache) = &self.cache {
            cache.put(key, &answer, self.clock.now());
        }
        Ok(answer)
    }
}

impl Cache {
    fn get(&self, key: &[u8; 32], now: UnixTime) -> Option<Introspection> {
        let map = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(key) {
            Some((answer, until)) if now < *until => Some(answer.clone()),
            _ => None,
        }
    }

    fn put(&self, key: [u8; 32], answer: &Introspection, now: UnixTime) {
        let mut until = now.plus(self.ttl);
        if let Some(exp) = answer.exp.filter(|_| answer.active) {
            until = until.min(exp);
        }
        if until <= now {
            return;
        }
        let mut map = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.max_entries {
            map.retain(|_, (_, u)| now < *u);
        }
        if map.len() < self.max_entries {
            map.insert(key, (answer.clone(), until));
        }
    }
}

/// The SHA-256 of a token (or any string): what the caches of this crate, the server and the
/// gateway key on, so none of them holds the token itself.
pub fn token_digest(token: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}
