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

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;

use crate::MAX_TOKEN_BYTES;
use crate::access_token::parse_scope;
use crate::clock::{Clock, SystemClock};
use crate::http::{BasicAuth, HttpClient, HttpError};

/// An introspection answer (RFC 7662 §2.2). For an inactive token only `active` is meaningful.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Introspection {
    /// Whether the token is active.
    pub active: bool,
    /// `scope`, split into its tokens.
    pub scope: BTreeSet<String>,
    /// `client_id`.
    pub client_id: Option<String>,
    /// `sub`.
    pub sub: Option<String>,
    /// `aud`, as a list whether it came as a string or an array.
    pub aud: Vec<String>,
    /// `iss`.
    pub iss: Option<String>,
    /// `exp` in Unix seconds.
    pub exp: Option<u64>,
    /// `iat` in Unix seconds.
    pub iat: Option<u64>,
    /// `jti`.
    pub jti: Option<String>,
    /// `token_type`, e.g. `Bearer`.
    pub token_type: Option<String>,
}

impl Introspection {
    /// The answer for a token that is not active.
    pub fn inactive() -> Introspection {
        Introspection::default()
    }

    /// Whether the token is active and its `scope` contains this scope token.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.active && self.scope.contains(scope)
    }
}

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
    ttl: u64,
    max_entries: usize,
    entries: Mutex<HashMap<[u8; 32], (Introspection, u64)>>,
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
        client_id: &str,
        client_secret: &str,
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
            ttl: ttl.as_secs(),
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
        let key = sha256(token);
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
        let answer = parse_response(&resp.body)?;
        if let Some(cache) = &self.cache {
            cache.put(key, &answer, self.clock.now());
        }
        Ok(answer)
    }
}

impl Cache {
    fn get(&self, key: &[u8; 32], now: u64) -> Option<Introspection> {
        let map = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(key) {
            Some((answer, until)) if now < *until => Some(answer.clone()),
            _ => None,
        }
    }

    fn put(&self, key: [u8; 32], answer: &Introspection, now: u64) {
        let mut until = now.saturating_add(self.ttl);
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

fn sha256(token: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// RFC 7662 §2.2: `active` is required and boolean; the other members are optional but must
/// have their registered types.
fn parse_response(body: &[u8]) -> Result<Introspection, IntrospectionError> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|_| IntrospectionError::Malformed("not JSON"))?;
    let obj = doc
        .as_object()
        .ok_or(IntrospectionError::Malformed("not a JSON object"))?;
    let active =
        obj.get("active")
            .and_then(Value::as_bool)
            .ok_or(IntrospectionError::Malformed(
                "active is missing or not a boolean",
            ))?;
    if !active {
        return Ok(Introspection::inactive());
    }
    let string = |name: &'static str| -> Result<Option<String>, IntrospectionError> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(IntrospectionError::Malformed(name)),
        }
    };
    let time = |name: &'static str| -> Result<Option<u64>, IntrospectionError> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or(IntrospectionError::Malformed(name)),
        }
    };
    let aud = match obj.get("aud") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(IntrospectionError::Malformed("aud"))?,
        Some(_) => return Err(IntrospectionError::Malformed("aud")),
    };
    Ok(Introspection {
        active,
        scope: string("scope")?
            .as_deref()
            .map(parse_scope)
            .unwrap_or_default(),
        client_id: string("client_id")?,
        sub: string("sub")?,
        aud,
        iss: string("iss")?,
        exp: time("exp")?,
        iat: time("iat")?,
        jti: string("jti")?,
        token_type: string("token_type")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7662_s2_2_response_shapes() {
        let a = parse_response(br#"{"active":true,"scope":"a b","aud":"x","exp":5}"#).unwrap();
        assert!(a.active && a.has_scope("b") && a.aud == ["x"] && a.exp == Some(5));
        let i = parse_response(br#"{"active":false,"scope":"a"}"#).unwrap();
        assert_eq!(i, Introspection::inactive());
        assert!(!i.has_scope("a"));
        for bad in [
            &br#"{"active":"true"}"#[..],
            br#"{}"#,
            br#"[]"#,
            br#"{"active":true,"exp":"5"}"#,
            br#"{"active":true,"aud":[1]}"#,
        ] {
            assert!(parse_response(bad).is_err());
        }
    }
}
