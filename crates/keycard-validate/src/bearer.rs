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
//! [`BearerError::to_response`] maps each refusal to its RFC 6750 error and answers through
//! `keycard_protocol::wire::bearer_error`, the authorization server's voice too: no credentials →
//! 401 with a bare challenge; malformed header → 400 `invalid_request`; bad token → 401
//! `invalid_token`; missing scope → 403 `insufficient_scope` with `scope`; keys or introspection
//! unavailable → 503 without a challenge. Errors carry the JSON error body.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use keycard_protocol::wire::{self, WireError};
use keycard_protocol::{ErrorCode, OAuthError, bearer};

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
    /// The refusal for a validation error: `invalid_token`, or unavailable when the keys could
    /// not be loaded.
    pub fn from_validation(e: ValidationError) -> BearerError {
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
            | ValidationError::InvalidClaim(_)
            | ValidationError::Revoked
            | ValidationError::IssuedTooLongAgo
            | ValidationError::WrongNonce
            | ValidationError::WrongAtHash
            | ValidationError::WrongAuthorizedParty
            | ValidationError::WrongSubject
            | ValidationError::MissingLogoutEvent
            | ValidationError::NonceInLogoutToken
            | ValidationError::NoLogoutSubject => BearerError::InvalidToken(e),
        }
    }

    /// The RFC 6750 error this refusal is, `None` for a request without credentials (§3.1).
    /// Descriptions are client-safe and never name the token.
    pub fn to_oauth(&self) -> Option<OAuthError> {
        match self {
            BearerError::NoToken => None,
            BearerError::InvalidRequest => Some(OAuthError::invalid_request(
                "malformed Authorization header",
            )),
            BearerError::InvalidToken(_) => Some(OAuthError::new(
                ErrorCode::InvalidToken,
                "the access token is invalid or expired",
            )),
            BearerError::Inactive => Some(OAuthError::new(
                ErrorCode::InvalidToken,
                "the access token is not active",
            )),
            BearerError::InsufficientScope(_) => Some(OAuthError::new(
                ErrorCode::InsufficientScope,
                "the access token lacks a required scope",
            )),
            BearerError::Unavailable(_) | BearerError::IntrospectionUnavailable(_) => {
                Some(OAuthError::bare(ErrorCode::TemporarilyUnavailable))
            }
            BearerError::MissingLayer => Some(OAuthError::bare(ErrorCode::ServerError)),
        }
    }

    /// The RFC 6750 §3 answer, with `realm` in the challenge when given: the one voice of
    /// `keycard_protocol::wire::bearer_error`, shared with the authorization server.
    pub fn to_response(&self, realm: Option<&str>) -> Response {
        let scope = match self {
            BearerError::InsufficientScope(needed) => Some(needed.to_scope_string()),
            _ => None,
        };
        wire_response(wire::bearer_error(
            self.to_oauth().as_ref(),
            realm,
            scope.as_deref(),
        ))
    }
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        self.to_response(None)
    }
}

/// Turns the protocol's plain wire data into an axum response: the status, the
/// `WWW-Authenticate` challenge, a JSON body when there is one, and `Cache-Control: no-store`.
/// The authorization server and the gateway answer through this too.
pub fn wire_response(w: WireError) -> Response {
    let status = StatusCode::from_u16(w.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = if w.body.is_empty() {
        status.into_response()
    } else {
        (status, [(CONTENT_TYPE, "application/json")], w.body).into_response()
    };
    if let Some(c) = w
        .www_authenticate
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        resp.headers_mut().insert(WWW_AUTHENTICATE, c);
    }
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The token of an `Authorization: Bearer` header (RFC 6750 §2.1; the scheme is
/// case-insensitive; `keycard_protocol::bearer::extract`). Another scheme, or no header, is
/// [`BearerError::NoToken`]; a query-string token is never looked at.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, BearerError> {
    let values = headers
        .get_all(AUTHORIZATION)
        .iter()
        .map(HeaderValue::as_bytes);
    match bearer::extract(values, None) {
        Ok(Some(token)) => Ok(token),
        Ok(None) => Err(BearerError::NoToken),
        Err(_) => Err(BearerError::InvalidRequest),
    }
}

/// A tower layer that requires a valid bearer token (and scopes) and puts the [`AccessToken`]
/// in the request extensions.
///
/// ```no_run
/// # use axum::{Router, routing::get};
/// # use keycard_validate::{Bearer, BearerLayer, Validator};
/// # fn app(validator: Validator) -> Router {
/// Router::new()
///     .route("/photos", get(|Bearer(t): Bearer| async move { t.sub().to_string() }))
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
        let realm = Arc::from(validator.audience().as_str());
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

    #[test]
    fn rfc6750_s2_1_multiple_or_malformed_headers_are_invalid_request() {
        let mut h = HeaderMap::new();
        h.append(AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        h.append(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert!(matches!(bearer_token(&h), Err(BearerError::InvalidRequest)));
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic YTpi"));
        assert!(matches!(bearer_token(&h), Err(BearerError::NoToken)));
    }
}
