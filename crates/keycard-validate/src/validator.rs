//! Access-token validation against one issuer (RFC 9068 §4; RFC 8725 §3), with the issuer's
//! keys discovered, fetched and cached (OpenID Connect Discovery 1.0 §4; RFC 8414 §3).
//!
//! [`Validator::validate`] checks a token with keys it fetches itself (`crate::local`'s
//! `LocalVerifier` with keys the caller already holds). [`ValidationError`] and [`FetchError`]
//! say why a token was refused or a fetch failed.
//!
//! The cheap checks run first (size, segments, header rules, `iss`, `aud`, time); only then is the
//! `kid` looked up and the signature verified, so claims read before that are only ever used to
//! refuse a token, and a refused token never causes a fetch. The key cache is one `Arc<KeySet>`
//! behind an `RwLock`, refreshed when `Cache-Control` says it is stale or when a `kid` is
//! unknown. Every fetch runs under one async mutex (single flight) and is attempted at most once
//! per `min_refresh_interval`; unknown kids are remembered for that interval; a failed fetch
//! keeps the previous keys.
//!
//! Not here: the JWS structure, header rules and signature check (`jws`), the claim rules and
//! [`AccessToken`] (`access_token`), JWKS parsing and `Cache-Control` (`jwks`).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use crate::access_token::{self, AccessToken, check_claims};
use crate::feed::RevocationFeed;
use crate::http::{HttpClient, HttpError, HttpResponse};
use crate::jwks::{self, Key, KeySet};
use crate::jws::Jws;
use keycard_os::SystemClock;
use keycard_protocol::discovery::{MetadataError, ProviderMetadata};
use keycard_protocol::{Audience, Clock, Issuer, UnixTime};

/// Why a token was refused, or why it could not be checked.
///
/// Every variant except [`ValidationError::KeysUnavailable`] is the token's fault and answers
/// RFC 6750 `invalid_token`. Messages never contain the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The token is larger than [`MAX_TOKEN_BYTES`](crate::MAX_TOKEN_BYTES).
    #[error("token is too large")]
    TooLarge,
    /// Not three base64url segments with JSON-object header and payload, duplicate members, or
    /// a header member of the wrong type.
    #[error("token is not a well-formed JWS")]
    Malformed,
    /// `typ` is not `at+jwt` (RFC 9068 §4; RFC 8725 §3.11), e.g. an id token.
    #[error("token is not a JWT access token")]
    WrongType,
    /// `alg` is `none`, an HMAC algorithm, or missing (RFC 8725 §3.1).
    #[error("token algorithm is not allowed")]
    DisallowedAlgorithm,
    /// The header has `crit`; no extensions are understood (RFC 7515 §4.1.11).
    #[error("token has critical header parameters")]
    CriticalHeader,
    /// No issuer key has the token's `kid` (RFC 8725 §3.10).
    #[error("no issuer key matches the token")]
    UnknownKey,
    /// The header `alg` differs from the key's `alg` (RFC 8725 §3.1).
    #[error("token algorithm does not match the key")]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("token signature is invalid")]
    BadSignature,
    /// `iss` differs from the issuer (exact string comparison).
    #[error("token issuer is wrong")]
    WrongIssuer,
    /// `aud` does not contain this resource server.
    #[error("token audience is wrong")]
    WrongAudience,
    /// `exp` has passed, beyond the leeway.
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future, beyond the leeway.
    #[error("token is not yet valid")]
    NotYetValid,
    /// `iat` is in the future, beyond the leeway.
    #[error("token was issued in the future")]
    IssuedInFuture,
    /// A required claim is missing, or a claim has the wrong JSON type (a string `exp`, say).
    #[error("claim `{0}` is missing or has the wrong type")]
    InvalidClaim(&'static str),
    /// `iat` lies further in the past than a freshly issued id or logout token's may.
    #[error("token was issued too long ago")]
    IssuedTooLongAgo,
    /// An id token's `nonce` is missing or differs from the one sent (OpenID Connect Core
    /// §3.1.3.7 item 11).
    #[error("id token nonce does not match")]
    WrongNonce,
    /// An id token's `at_hash` does not match the access token (OpenID Connect Core §3.1.3.8).
    #[error("id token at_hash does not match the access token")]
    WrongAtHash,
    /// `azp` names another client, or several audiences come without `azp` (OpenID Connect
    /// Core §3.1.3.7 items 3–5).
    #[error("id token authorized party is wrong")]
    WrongAuthorizedParty,
    /// A refreshed id token names another subject than the session's (OpenID Connect Core §12.2).
    #[error("id token subject differs from the session's")]
    WrongSubject,
    /// A logout token has no `events` member with the back-channel logout event (OpenID Connect
    /// Back-Channel Logout 1.0 §2.6 item 5).
    #[error("logout token has no back-channel logout event")]
    MissingLogoutEvent,
    /// A logout token carries a `nonce` (Back-Channel Logout 1.0 §2.6 item 6).
    #[error("logout token must not carry a nonce")]
    NonceInLogoutToken,
    /// A logout token names neither `sub` nor `sid` (Back-Channel Logout 1.0 §2.6 item 4).
    #[error("logout token names neither sub nor sid")]
    NoLogoutSubject,
    /// The issuer's keys could not be loaded; the token was not judged.
    #[error("issuer keys are unavailable")]
    KeysUnavailable(#[source] FetchError),
    /// The revocation feed reported the token, its grant, user, client or signing key revoked.
    #[error("token has been revoked")]
    Revoked,
}

/// Why discovery or a JWKS fetch failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The HTTP exchange failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The server answered with a status other than 200.
    #[error("unexpected HTTP status {0}")]
    Status(u16),
    /// No answer within the fetch timeout.
    #[error("timed out")]
    Timeout,
    /// The body exceeds the size cap.
    #[error("response is too large")]
    TooLarge,
    /// The document is not what was expected.
    #[error("malformed document: {0}")]
    Malformed(&'static str),
    /// The discovery document names another issuer (RFC 8414 §3.3).
    #[error("discovery document names another issuer")]
    IssuerMismatch,
    /// The JWKS holds no key this crate can use.
    #[error("JWKS has no usable signing key")]
    NoUsableKeys,
    /// A fetch happened less than `min_refresh_interval` ago and no keys are loaded.
    #[error("keys are not loaded and the last fetch was too recent to retry")]
    Backoff,
}

/// How a [`Validator`] behaves. Build it from `default()` with the setters.
#[derive(Clone)]
pub struct ValidatorOptions {
    pub(crate) leeway: Duration,
    min_refresh_interval: Duration,
    fetch_timeout: Duration,
    max_jwks_bytes: usize,
    default_jwks_ttl: Duration,
    jwks_uri: Option<String>,
    clock: Arc<dyn Clock>,
    feed: Option<RevocationFeed>,
    signature_memo: usize,
}

/// The largest leeway accepted (RFC 8725 guidance, SECURITY.md §4.7).
const MAX_LEEWAY: Duration = Duration::from_secs(60);
/// The longest a JWKS is trusted without refetching, whatever `Cache-Control` says.
const MAX_JWKS_TTL: u64 = 24 * 60 * 60;
/// The most unknown kids remembered; the memory is cleared when it is full.
const MAX_UNKNOWN_KIDS: usize = 1024;

impl Default for ValidatorOptions {
    fn default() -> ValidatorOptions {
        ValidatorOptions {
            leeway: Duration::from_secs(30),
            min_refresh_interval: Duration::from_secs(60),
            fetch_timeout: Duration::from_secs(5),
            max_jwks_bytes: 256 * 1024,
            default_jwks_ttl: Duration::from_secs(300),
            jwks_uri: None,
            clock: Arc::new(SystemClock),
            feed: None,
            signature_memo: DEFAULT_SIGNATURE_MEMO,
        }
    }
}

/// How many verified signatures are remembered by default.
const DEFAULT_SIGNATURE_MEMO: usize = 8192;

impl ValidatorOptions {
    /// Clock skew allowed on `exp`, `nbf` and `iat`; default 30 s, at most 60 s (larger values
    /// are capped).
    pub fn leeway(mut self, leeway: Duration) -> ValidatorOptions {
        self.leeway = leeway.min(MAX_LEEWAY);
        self
    }

    /// The least time between two JWKS fetch attempts, whatever the traffic; default 60 s.
    pub fn min_refresh_interval(mut self, interval: Duration) -> ValidatorOptions {
        self.min_refresh_interval = interval;
        self
    }

    /// Timeout for each discovery or JWKS request; default 5 s.
    pub fn fetch_timeout(mut self, timeout: Duration) -> ValidatorOptions {
        self.fetch_timeout = timeout;
        self
    }

    /// Largest discovery or JWKS body accepted; default 256 KiB.
    pub fn max_jwks_bytes(mut self, bytes: usize) -> ValidatorOptions {
        self.max_jwks_bytes = bytes;
        self
    }

    /// How long keys are kept when the JWKS response has no `max-age`; default 300 s.
    pub fn default_jwks_ttl(mut self, ttl: Duration) -> ValidatorOptions {
        self.default_jwks_ttl = ttl;
        self
    }

    /// Use this `jwks_uri` instead of discovering it.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> ValidatorOptions {
        self.jwks_uri = Some(uri.into());
        self
    }

    /// The time source; default [`SystemClock`]. Any `Fn() -> UnixTime` closure works.
    pub fn clock(mut self, clock: impl Clock + 'static) -> ValidatorOptions {
        self.clock = Arc::new(clock);
        self
    }

    /// Also refuse tokens the authorization server revoked ([`ValidationError::Revoked`]),
    /// as this feed reports them, and drop the keys it reports revoked. The feed runs on its
    /// own ([`RevocationFeed::spawn`]); how stale it may be is the caller's decision
    /// ([`RevocationFeed::staleness`]).
    pub fn revocation_feed(mut self, feed: RevocationFeed) -> ValidatorOptions {
        self.feed = Some(feed);
        self
    }

    /// How many tokens whose signature verified are remembered, so the same token presented
    /// again skips the signature check (every other check still runs each time); default
    /// 8,192, 0 turns it off. An entry holds the SHA-256 of the token and the key it verified
    /// with, and counts only while that same key object is the current one for its `kid`: a
    /// refetched or dropped key verifies again. The memory is emptied when full.
    pub fn signature_memo(mut self, entries: usize) -> ValidatorOptions {
        self.signature_memo = entries;
        self
    }
}

impl fmt::Debug for ValidatorOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidatorOptions")
            .field("leeway", &self.leeway)
            .field("min_refresh_interval", &self.min_refresh_interval)
            .field("fetch_timeout", &self.fetch_timeout)
            .field("max_jwks_bytes", &self.max_jwks_bytes)
            .field("default_jwks_ttl", &self.default_jwks_ttl)
            .field("jwks_uri", &self.jwks_uri)
            .field("revocation_feed", &self.feed.is_some())
            .field("signature_memo", &self.signature_memo)
            .finish_non_exhaustive()
    }
}

/// Checks access tokens issued by one issuer for one audience. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct Validator {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: Issuer,
    audience: Audience,
    http: Arc<dyn HttpClient>,
    opts: ValidatorOptions,
    keys: RwLock<Arc<KeySet>>,
    /// Held for the whole of a fetch: the single flight. Holds the discovered `jwks_uri`.
    refresh: tokio::sync::Mutex<Option<String>>,
    /// When the last fetch attempt finished, plus one; zero means never.
    last_attempt: AtomicU64,
    /// Unknown kids, with the time until which they are not looked up again.
    unknown_kids: Mutex<HashMap<String, u64>>,
    /// The feed's key generation the key set was last reconciled with.
    feed_keys_generation: AtomicU64,
    /// Tokens whose signature verified, by SHA-256, with the key that verified them.
    verified: RwLock<HashMap<[u8; 32], Arc<Key>>>,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .field("options", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// A validator for tokens from `issuer` (compared exactly with `iss`, so no trailing-slash
    /// slack) whose `aud` contains `audience`. Nothing is fetched until the first token or
    /// [`Validator::refresh`].
    pub fn new(
        issuer: Issuer,
        audience: Audience,
        http: Arc<dyn HttpClient>,
        options: ValidatorOptions,
    ) -> Validator {
        let jwks_uri = options.jwks_uri.clone();
        Validator {
            inner: Arc::new(Inner {
                issuer,
                audience,
                http,
                opts: options,
                keys: RwLock::new(Arc::new(KeySet::empty())),
                refresh: tokio::sync::Mutex::new(jwks_uri),
                last_attempt: AtomicU64::new(0),
                unknown_kids: Mutex::new(HashMap::new()),
                feed_keys_generation: AtomicU64::new(0),
                verified: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// A validator using [`ReqwestClient`](crate::ReqwestClient) and default options, with the
    /// issuer's keys loaded before it returns.
    #[cfg(feature = "reqwest")]
    pub async fn discover(
        issuer: Issuer,
        audience: Audience,
    ) -> Result<Validator, ValidationError> {
        let http = crate::http::ReqwestClient::new()
            .map_err(|e| ValidationError::KeysUnavailable(FetchError::Http(e)))?;
        let v = Validator::new(
            issuer,
            audience,
            Arc::new(http),
            ValidatorOptions::default(),
        );
        v.refresh().await?;
        Ok(v)
    }

    /// The issuer this validator accepts.
    pub fn issuer(&self) -> &Issuer {
        &self.inner.issuer
    }

    /// The audience this validator requires.
    pub fn audience(&self) -> &Audience {
        &self.inner.audience
    }

    /// Fetches discovery (once) and the JWKS now, unless a fetch was attempted less than
    /// `min_refresh_interval` ago. Succeeds when keys are loaded afterwards.
    pub async fn refresh(&self) -> Result<(), ValidationError> {
        let mut state = self.inner.refresh.lock().await;
        let now = self.now();
        let result = if self.may_fetch(now) {
            self.fetch(&mut state).await
        } else {
            Err(FetchError::Backoff)
        };
        drop(state);
        match result {
            Ok(()) => Ok(()),
            Err(_) if !self.current().keys.is_empty() => Ok(()),
            Err(e) => Err(ValidationError::KeysUnavailable(e)),
        }
    }

    /// Validates a JWT access token (RFC 9068 §4, RFC 8725 §3) and returns its claims.
    pub async fn validate(&self, token: &str) -> Result<AccessToken, ValidationError> {
        let jws = Jws::parse(token)?;
        let header = jws.header.check(access_token::TYP)?;
        let feed = self.inner.opts.feed.as_ref();
        if let Some(feed) = feed {
            self.reconcile_keys(feed);
            if feed.is_kid_revoked(header.kid()) {
                return Err(ValidationError::Revoked);
            }
        }
        let at = check_claims(
            jws.claims,
            &self.inner.issuer,
            Some(&self.inner.audience),
            self.inner.opts.clock.now(),
            leeway_secs(self.inner.opts.leeway),
        )?;
        let key = self.key_for(header.kid()).await?;
        self.verify_once(token, &jws.signed, &header, &key)?;
        if feed.is_some_and(|f| f.is_revoked(&at, Some(header.kid()))) {
            return Err(ValidationError::Revoked);
        }
        Ok(at)
    }

    /// Verifies the signature unless these exact bytes already verified with this same key
    /// object (see [`ValidatorOptions::signature_memo`]). A signature check is a pure function
    /// of the bytes and the key, so the memo changes no answer, only its cost.
    fn verify_once(
        &self,
        token: &str,
        signed: &crate::jws::Signed<'_>,
        header: &crate::jws::CheckedHeader<'_>,
        key: &Arc<Key>,
    ) -> Result<(), ValidationError> {
        let cap = self.inner.opts.signature_memo;
        if cap == 0 {
            return signed.verify_signature(header, key);
        }
        let digest = crate::introspect::token_digest(token);
        let seen = self
            .inner
            .verified
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&digest)
            .is_some_and(|k| Arc::ptr_eq(k, key));
        if seen {
            return Ok(());
        }
        signed.verify_signature(header, key)?;
        let mut memo = self
            .inner
            .verified
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if memo.len() >= cap {
            memo.clear();
        }
        memo.insert(digest, key.clone());
        Ok(())
    }

    /// After a `kid` or `jwks` event: drops the keys the feed reports revoked and marks the
    /// rest stale, so the next lookup refetches the JWKS (within `min_refresh_interval`).
    fn reconcile_keys(&self, feed: &RevocationFeed) {
        let generation = feed.keys_generation();
        if self
            .inner
            .feed_keys_generation
            .swap(generation, Ordering::AcqRel)
            == generation
        {
            return;
        }
        let mut keys = self
            .inner
            .keys
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let kept = keys
            .keys
            .iter()
            .filter(|(kid, _)| !feed.is_kid_revoked(kid))
            .map(|(kid, key)| (kid.clone(), key.clone()))
            .collect();
        *keys = Arc::new(KeySet {
            keys: kept,
            expires_at: 0,
        });
    }

    /// The configured clock's time, as claims are judged.
    pub(crate) fn claims_now(&self) -> UnixTime {
        self.inner.opts.clock.now()
    }

    /// The configured leeway, in whole seconds.
    pub(crate) fn leeway(&self) -> i64 {
        leeway_secs(self.inner.opts.leeway)
    }

    /// The cache's time, in whole seconds since the epoch (never negative).
    fn now(&self) -> u64 {
        u64::try_from(self.inner.opts.clock.now().secs()).unwrap_or(0)
    }

    fn current(&self) -> Arc<KeySet> {
        self.inner
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn may_fetch(&self, now: u64) -> bool {
        match self.inner.last_attempt.load(Ordering::Acquire) {
            0 => true,
            last => now.saturating_sub(last - 1) >= self.inner.opts.min_refresh_interval.as_secs(),
        }
    }

    fn is_known_unknown(&self, kid: &str, now: u64) -> bool {
        let map = self
            .inner
            .unknown_kids
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.get(kid).is_some_and(|until| now < *until)
    }

    fn remember_unknown(&self, kid: &str, now: u64) {
        let mut map = self
            .inner
            .unknown_kids
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_UNKNOWN_KIDS {
            map.clear();
        }
        let until = now.saturating_add(self.inner.opts.min_refresh_interval.as_secs());
        map.insert(kid.to_owned(), until);
    }

    /// The error for a kid that is still unknown when no fetch may run.
    fn miss(&self, kid: &str, set: &KeySet, now: u64) -> ValidationError {
        if set.keys.is_empty() {
            ValidationError::KeysUnavailable(FetchError::Backoff)
        } else {
            self.remember_unknown(kid, now);
            ValidationError::UnknownKey
        }
    }

    /// The issuer key with this `kid`, from the cache or, at most once per interval, a fetch.
    /// The id-token verifier looks its keys up here too.
    pub(crate) async fn key_for(&self, kid: &str) -> Result<Arc<Key>, ValidationError> {
        let now = self.now();
        let set = self.current();
        if let Some(key) = set.keys.get(kid) {
            if now < set.expires_at {
                return Ok(key.clone());
            }
            // Stale keys: one caller refreshes while the others keep using what they have.
            let Ok(mut state) = self.inner.refresh.try_lock() else {
                return Ok(key.clone());
            };
            if self.may_fetch(now) && self.current().expires_at <= now {
                // On failure the old keys stay in place.
                let _ = self.fetch(&mut state).await;
            }
            drop(state);
            return self
                .current()
                .keys
                .get(kid)
                .cloned()
                .ok_or(ValidationError::UnknownKey);
        }
        if self.is_known_unknown(kid, now) {
            return Err(ValidationError::UnknownKey);
        }
        if !self.may_fetch(now) {
            // A fetch may have finished since `set` was read: look again before refusing.
            return self.current_or_miss(kid, now);
        }
        // Single flight: everyone who missed waits here for the one fetch.
        let mut state = self.inner.refresh.lock().await;
        if let Some(key) = self.current().keys.get(kid) {
            return Ok(key.clone());
        }
        let now = self.now();
        if self.may_fetch(now)
            && let Err(e) = self.fetch(&mut state).await
            && self.current().keys.is_empty()
        {
            return Err(ValidationError::KeysUnavailable(e));
        }
        drop(state);
        self.current_or_miss(kid, now)
    }

    /// The key from the current set, or the error for a kid it does not hold.
    fn current_or_miss(&self, kid: &str, now: u64) -> Result<Arc<Key>, ValidationError> {
        let set = self.current();
        match set.keys.get(kid) {
            Some(key) => Ok(key.clone()),
            None => Err(self.miss(kid, &set, now)),
        }
    }

    /// One fetch attempt; the caller holds the refresh mutex. Keeps the old keys on failure.
    async fn fetch(&self, jwks_uri: &mut Option<String>) -> Result<(), FetchError> {
        let result = self.fetch_keys(jwks_uri).await;
        let done = self.now();
        let outcome = result.map(|(keys, ttl)| {
            let set = KeySet {
                keys,
                expires_at: done.saturating_add(ttl),
            };
            *self
                .inner
                .keys
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
            self.inner
                .unknown_kids
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
        });
        // Published after the keys: whoever sees this attempt (and so may not fetch) also sees
        // what it fetched. The other order let a caller see "just fetched" next to the old,
        // empty key set and refuse a token during a cold start (a test caught it under load).
        self.inner
            .last_attempt
            .store(done.saturating_add(1), Ordering::Release);
        outcome
    }

    async fn fetch_keys(
        &self,
        jwks_uri: &mut Option<String>,
    ) -> Result<(HashMap<String, Arc<Key>>, u64), FetchError> {
        let uri = match jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let uri = self.discover_jwks_uri().await?;
                *jwks_uri = Some(uri.clone());
                uri
            }
        };
        let resp = self.get(&uri).await?;
        let keys = jwks::parse_jwks(&resp.body).map_err(FetchError::Malformed)?;
        if keys.is_empty() {
            return Err(FetchError::NoUsableKeys);
        }
        let opts = &self.inner.opts;
        let ttl = jwks::max_age(resp.cache_control.as_deref())
            .unwrap_or(opts.default_jwks_ttl.as_secs())
            .max(opts.min_refresh_interval.as_secs())
            .min(MAX_JWKS_TTL.max(opts.min_refresh_interval.as_secs()));
        Ok((keys, ttl))
    }

    /// OpenID Connect Discovery 1.0 §4 / RFC 8414 §3: the document must name our issuer.
    async fn discover_jwks_uri(&self) -> Result<String, FetchError> {
        let url = ProviderMetadata::discovery_url(&self.inner.issuer);
        let resp = self.get(&url).await?;
        let doc =
            ProviderMetadata::parse_for(&resp.body, &self.inner.issuer).map_err(|e| match e {
                MetadataError::IssuerMismatch | MetadataError::MissingIssuer => {
                    FetchError::IssuerMismatch
                }
                MetadataError::Malformed => FetchError::Malformed("discovery document is not JSON"),
            })?;
        doc.jwks_uri
            .ok_or(FetchError::Malformed("discovery document has no jwks_uri"))
    }

    async fn get(&self, url: &str) -> Result<HttpResponse, FetchError> {
        let opts = &self.inner.opts;
        let resp = tokio::time::timeout(opts.fetch_timeout, self.inner.http.get(url))
            .await
            .map_err(|_| FetchError::Timeout)??;
        if resp.status != 200 {
            return Err(FetchError::Status(resp.status));
        }
        if resp.body.len() > opts.max_jwks_bytes {
            return Err(FetchError::TooLarge);
        }
        Ok(resp)
    }
}

/// The leeway in whole seconds, as claims count time.
pub(crate) fn leeway_secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(60)
}

#[cfg(test)]
mod tests {
    use super::*;

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use proptest::prelude::*;

    use crate::access_token::tests::{NOW, good};
    use crate::http::{BasicAuth, BoxFuture};

    /// A JWKS endpoint with one Ed25519 key that never changes.
    struct StaticJwks;

    impl HttpClient for StaticJwks {
        fn get<'a>(&'a self, _url: &'a str) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
            let body = serde_json::json!({"keys": [{"kty": "OKP", "kid": "k1", "alg": "EdDSA",
                "use": "sig", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]});
            Box::pin(async move { Ok(HttpResponse::new(200, body.to_string())) })
        }
        fn post_form<'a>(
            &'a self,
            _url: &'a str,
            _auth: &'a BasicAuth,
            _form: &'a [(&'a str, &'a str)],
        ) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
            Box::pin(async { Err(HttpError::new("unused")) })
        }
    }

    fn validator() -> Validator {
        Validator::new(
            Issuer::from_wire("http://127.0.0.1:8080").unwrap(),
            Audience::parse("https://api.example.com").unwrap(),
            Arc::new(StaticJwks),
            ValidatorOptions::default()
                .jwks_uri("http://127.0.0.1:8080/jwks.json")
                .clock(|| UnixTime(NOW)),
        )
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    proptest! {
        #[test]
        fn validate_never_panics_on_strings(s in ".{0,300}") {
            let v = validator();
            let r = runtime().block_on(v.validate(&s));
            prop_assert!(r.is_err());
        }

        #[test]
        fn validate_never_panics_on_three_segments(
            h in "[A-Za-z0-9_=+/-]{0,80}",
            p in "[A-Za-z0-9_-]{0,120}",
            s in "[A-Za-z0-9_-]{0,90}",
            header in prop::option::of(prop::sample::select(vec![
                r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k1"}"#,
                r#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#,
                r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k1","crit":[]}"#,
            ])),
        ) {
            let h = header.map(|j| URL_SAFE_NO_PAD.encode(j)).unwrap_or(h);
            let token = format!("{h}.{p}.{s}");
            let v = validator();
            let r = runtime().block_on(v.validate(&token));
            prop_assert!(r.is_err());
        }

        #[test]
        fn rfc8725_flipped_signature_is_always_refused(sig in prop::collection::vec(any::<u8>(), 64)) {
            let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k1"}"#);
            let payload = URL_SAFE_NO_PAD.encode(good().to_string());
            let token = format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(&sig));
            let v = validator();
            let r = runtime().block_on(v.validate(&token));
            prop_assert!(matches!(r, Err(ValidationError::BadSignature)), "{:?}", r);
        }
    }
}
