//! RFC 6750 bearer-token protection for axum: a tower layer that authenticates and a matching
//! extractor.
//!
//! Design: [`BearerLayer`] does all the work. It reads `Authorization: Bearer` (scheme
//! case-insensitive, RFC 9110 §11.1), validates the token, checks the [`RequireScopes`], and
//! inserts the [`AccessToken`] into the request extensions. [`Bearer`] only reads it back, so a
//! handler that takes `Bearer` behind the layer always gets a checked token; without the layer it
//! answers 500, like axum's `Extension`.
//!
//! Tokens in the query string or the body are never read (RFC 9700 §4.3.2 / OAuth 2.1 §5.2):
//! a request carrying one only there is a request without credentials.
//!
//! [`BearerError::to_response`] is the one place errors become responses (RFC 6750 §3): no
//! credentials → 401 with a bare challenge; malformed header → 400 `invalid_request`; bad token →
//! 401 `invalid_token`; missing scope → 403 `insufficient_scope` with `scope`.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::access_token::AccessToken;
use crate::http::BoxFuture;
use crate::validator::{ValidationError, Validator};

/// Scopes a route needs; the token must hold all of them (RFC 6750 §3.1 `insufficient_scope`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequireScopes {
    scopes: BTreeSet<String>,
}

impl RequireScopes {
    /// Requires every scope in `scopes`.
    pub fn all<I, S>(scopes: I) -> RequireScopes
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RequireScopes {
            scopes: scopes.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether the token holds every required scope.
    pub fn is_satisfied_by(&self, token: &AccessToken) -> bool {
        self.scopes.iter().all(|s| token.has_scope(s))
    }

    /// The required scopes as a `scope` value (space-separated).
    pub fn to_scope_string(&self) -> String {
        self.scopes
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Why a request was refused. [`BearerError::to_response`] turns it into the RFC 6750 answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// No `Authorization: Bearer` credentials (RFC 6750 §3.1: no error code).
    #[error("no bearer token")]
    NoToken,
    /// A malformed `Authorization` header, or more than one (RFC 6750 §3.1 `invalid_request`).
    #[error("malformed Authorization header")]
    InvalidRequest,
    /// The token was refused (RFC 6750 §3.1 `invalid_token`).
    #[error("invalid token: {0}")]
    InvalidToken(#[source] ValidationError),
    /// The token lacks a required scope (RFC 6750 §3.1 `insufficient_scope`).
    #[error("insufficient scope")]
    InsufficientScope(RequireScopes),
    /// The issuer's keys could not be loaded, so the token could not be judged.
    #[error("token validation is unavailable: {0}")]
    Unavailable(#[source] ValidationError),
    /// [`Bearer`] was used on a route without [`BearerLayer`].
    #[error("the Bearer extractor needs BearerLayer on the route")]
    MissingLayer,
    /// The authorization server reported the token inactive (RFC 7662 §2.2): `invalid_token`.
    #[error("the token is not active")]
    Inactive,
    /// The introspection endpoint could not be asked, so the token could not be judged.
    #[error("introspection is unavailable: {0}")]
    IntrospectionUnavailable(#[source] crate::IntrospectionError),
}

impl BearerError {
    fn from_validation(e: ValidationError) -> BearerError {
        match e {
            ValidationError::KeysUnavailable(_) => BearerError::Unavailable(e),
            ValidationError::TooLarge
            | ValidationError::Malformed
            | ValidationError::WrongType
            | ValidationError::DisallowedAlgorithm
            | ValidationError::CriticalHeader
            | ValidationError::UnknownKey
            | ValidationError::AlgorithmMismatch
            | ValidationError::BadSignature
            | ValidationError::WrongIssuer
            | ValidationError::WrongAudience
            | ValidationError::Expired
            | ValidationError::NotYetValid
            | ValidationError::IssuedInFuture
            | ValidationError::InvalidClaim(_) => BearerError::InvalidToken(e),
        }
    }

    /// The RFC 6750 §3 response, with `realm` in the challenge when given. The body is empty.
    pub fn to_response(&self, realm: Option<&str>) -> Response {
        let (status, error, scope) = match self {
            BearerError::NoToken => (StatusCode::UNAUTHORIZED, None, None),
            BearerError::InvalidRequest => (StatusCode::BAD_REQUEST, Some("invalid_request"), None),
            BearerError::InvalidToken(_) | BearerError::Inactive => {
                (StatusCode::UNAUTHORIZED, Some("invalid_token"), None)
            }
            BearerError::InsufficientScope(needed) => (
                StatusCode::FORBIDDEN,
                Some("insufficient_scope"),
                Some(needed.to_scope_string()),
            ),
            BearerError::Unavailable(_) | BearerError::IntrospectionUnavailable(_) => {
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            BearerError::MissingLayer => {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
        let mut params = Vec::new();
        if let Some(realm) = realm {
            params.push(format!("realm=\"{}\"", quote(realm)));
        }
        if let Some(error) = error {
            params.push(format!("error=\"{error}\""));
        }
        if let Some(scope) = scope {
            params.push(format!("scope=\"{}\"", quote(&scope)));
        }
        let challenge = if params.is_empty() {
            "Bearer".to_owned()
        } else {
            format!("Bearer {}", params.join(", "))
        };
        let mut resp = status.into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(WWW_AUTHENTICATE, v);
        }
        resp
    }
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        self.to_response(None)
    }
}

/// Escapes a quoted-string (RFC 9110 §5.6.4) and drops characters a header cannot carry.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c == ' ' || c.is_ascii_graphic() => out.push(c),
            _ => {}
        }
    }
    out
}

/// The token from `Authorization: Bearer <b64token>` (RFC 6750 §2.1), if the header uses that
/// scheme. Other schemes mean "no bearer credentials".
/// The token of an `Authorization: Bearer` header (RFC 6750 §2.1; the scheme is
/// case-insensitive). A query-string token is never looked at.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, BearerError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(BearerError::NoToken)?;
    if values.next().is_some() {
        return Err(BearerError::InvalidRequest);
    }
    let value = value.to_str().map_err(|_| BearerError::InvalidRequest)?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::NoToken);
    }
    let token = rest.trim_matches(' ');
    let body = token.trim_end_matches('=');
    let valid = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    if !valid {
        return Err(BearerError::InvalidRequest);
    }
    Ok(token)
}

/// A tower layer that requires a valid bearer token (and scopes) and puts the [`AccessToken`]
/// in the request extensions.
///
/// ```no_run
/// # use axum::{Router, routing::get};
/// # use keycard_validate::{Bearer, BearerLayer, Validator};
/// # fn app(validator: Validator) -> Router {
/// Router::new()
///     .route("/photos", get(|Bearer(t): Bearer| async move { t.sub().to_owned() }))
///     .route_layer(BearerLayer::new(validator).require(["photos:read"]).realm("photos"))
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct BearerLayer {
    validator: Validator,
    required: Arc<RequireScopes>,
    realm: Arc<str>,
}

impl BearerLayer {
    /// Requires a valid token; the realm defaults to the validator's audience.
    pub fn new(validator: Validator) -> BearerLayer {
        let realm = Arc::from(validator.audience());
        BearerLayer {
            validator,
            required: Arc::new(RequireScopes::default()),
            realm,
        }
    }

    /// Also requires these scopes (added to any already required).
    pub fn require<I, S>(mut self, scopes: I) -> BearerLayer
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut required = (*self.required).clone();
        required.scopes.extend(scopes.into_iter().map(Into::into));
        self.required = Arc::new(required);
        self
    }

    /// Sets the `realm` of the `WWW-Authenticate` challenge.
    pub fn realm(mut self, realm: impl Into<String>) -> BearerLayer {
        self.realm = Arc::from(realm.into());
        self
    }

    /// Authenticates a request's headers as the layer does.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<AccessToken, BearerError> {
        let token = bearer_token(headers)?;
        let at = self
            .validator
            .validate(token)
            .await
            .map_err(BearerError::from_validation)?;
        if !self.required.is_satisfied_by(&at) {
            return Err(BearerError::InsufficientScope((*self.required).clone()));
        }
        Ok(at)
    }
}

impl<S> tower::Layer<S> for BearerLayer {
    type Service = BearerService<S>;

    fn layer(&self, inner: S) -> BearerService<S> {
        BearerService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`BearerLayer`] wraps around a route.
#[derive(Clone)]
pub struct BearerService<S> {
    inner: S,
    layer: BearerLayer,
}

impl<S> fmt::Debug for BearerService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerService")
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

impl<S> tower::Service<Request> for BearerService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        // The clone that was polled ready serves this request (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            match layer.authenticate(req.headers()).await {
                Ok(at) => {
                    req.extensions_mut().insert(at);
                    inner.call(req).await
                }
                Err(e) => Ok(e.to_response(Some(&layer.realm))),
            }
        })
    }
}

/// The [`AccessToken`] that [`BearerLayer`] validated for this request.
#[derive(Clone, Debug)]
pub struct Bearer(pub AccessToken);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = BearerError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Bearer, BearerError> {
        parts
            .extensions
            .get::<AccessToken>()
            .cloned()
            .map(Bearer)
            .ok_or(BearerError::MissingLayer)
    }
}

/// Authenticates a request by asking the authorization server (RFC 7662) instead of checking
/// the token locally: for high-risk routes, where a revoked token must be refused at once.
///
/// ```no_run
/// # use keycard_validate::{introspect_request, Introspector, RequireScopes};
/// # async fn f(i: &Introspector, headers: &axum::http::HeaderMap) {
/// match introspect_request(i, headers, &RequireScopes::all(["orders:write"])).await {
///     Ok(token) => { /* token.sub, token.client_id, ... */ }
///     Err(e) => { let _response = e.to_response(Some("orders")); }
/// }
/// # }
/// ```
pub async fn introspect_request(
    introspector: &crate::Introspector,
    headers: &HeaderMap,
    required: &RequireScopes,
) -> Result<crate::Introspection, BearerError> {
    let token = bearer_token(headers)?;
    let answer = introspector
        .introspect(token)
        .await
        .map_err(BearerError::IntrospectionUnavailable)?;
    if !answer.active {
        return Err(BearerError::Inactive);
    }
    if !required.scopes.iter().all(|s| answer.has_scope(s)) {
        return Err(BearerError::InsufficientScope(required.clone()));
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn rfc6750_s2_1_authorization_header_parsing() {
        assert_eq!(
            bearer_token(&headers(&["Bearer abc.def-_~+/=="])).unwrap(),
            "abc.def-_~+/=="
        );
        assert_eq!(bearer_token(&headers(&["bEaReR  abc "])).unwrap(), "abc");
        assert!(matches!(
            bearer_token(&headers(&[])),
            Err(BearerError::NoToken)
        ));
        assert!(matches!(
            bearer_token(&headers(&["Basic YTpi"])),
            Err(BearerError::NoToken)
        ));
        assert!(matches!(
            bearer_token(&headers(&["Bearertoken"])),
            Err(BearerError::NoToken)
        ));
        for bad in [
            &["Bearer"][..],
            &["Bearer "],
            &["Bearer a b"],
            &["Bearer a=b"],
            &["Bearer a", "Bearer b"],
        ] {
            assert!(
                matches!(
                    bearer_token(&headers(bad)),
                    Err(BearerError::InvalidRequest)
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rfc6750_s3_challenge_quotes_the_realm() {
        let r = BearerError::NoToken.to_response(Some("a\"b\\c\n"));
        assert_eq!(
            r.headers()[WWW_AUTHENTICATE],
            "Bearer realm=\"a\\\"b\\\\c\""
        );
        let r = BearerError::NoToken.into_response();
        assert_eq!(r.headers()[WWW_AUTHENTICATE], "Bearer");
    }
}
