//! [`BffError`]: every way a BFF request fails, and its one JSON answer.
//!
//! Every answer is JSON (an RFC 6749 §5.2-shaped [`ErrorResponse`]) with `Cache-Control:
//! no-store`, never a redirect: a script calling `/bff/session` or the API proxy must be able to
//! tell "sign in again" (401 `login_required`) from "refused" (403 `access_denied`) and from
//! "try again" (503 `temporarily_unavailable`). Causes of 5xx answers are logged, not sent.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use keycard_protocol::ErrorResponse;

use crate::store::BffStoreError;

/// Why a BFF request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BffError {
    /// No session, an expired one, or one the provider ended (its refresh token was refused).
    #[error("not signed in")]
    Unauthenticated,
    /// CSRF defences: no custom header, a cross-site request, a bad form token; a path off the
    /// proxy's allowlist or an ambiguous one.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A malformed request (a bad callback, a bad logout token).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The proxy route does not allow the method.
    #[error("method not allowed")]
    MethodNotAllowed(Vec<Method>),
    /// A request or response body over the proxy's limit.
    #[error("body too large")]
    TooLarge,
    /// The upstream API failed or could not be reached.
    #[error("upstream failed: {0}")]
    Upstream(String),
    /// The upstream API did not answer in time.
    #[error("upstream timed out")]
    UpstreamTimeout,
    /// The provider or the session store is unreachable; the session is kept.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// A bug or a misconfiguration.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<BffStoreError> for BffError {
    fn from(e: BffStoreError) -> BffError {
        BffError::Unavailable(e.to_string())
    }
}

impl BffError {
    /// The status and the registered error code it is answered with.
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            BffError::Unauthenticated => (StatusCode::UNAUTHORIZED, "login_required"),
            BffError::Forbidden(_) => (StatusCode::FORBIDDEN, "access_denied"),
            BffError::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            BffError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "invalid_request"),
            BffError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request"),
            BffError::Upstream(_) => (StatusCode::BAD_GATEWAY, "temporarily_unavailable"),
            BffError::UpstreamTimeout => (StatusCode::GATEWAY_TIMEOUT, "temporarily_unavailable"),
            BffError::Unavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
            }
            BffError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        }
    }
}

impl IntoResponse for BffError {
    fn into_response(self) -> Response {
        let (status, code) = self.status();
        let description = match &self {
            BffError::Unauthenticated => Some("sign in again".to_owned()),
            BffError::Forbidden(why) | BffError::BadRequest(why) => Some((*why).to_owned()),
            BffError::MethodNotAllowed(_) => Some("method not allowed on this route".to_owned()),
            BffError::TooLarge => Some("body too large".to_owned()),
            BffError::Upstream(_)
            | BffError::UpstreamTimeout
            | BffError::Unavailable(_)
            | BffError::Internal(_) => {
                tracing::warn!(error = %self, "BFF request failed");
                None
            }
        };
        let body = ErrorResponse {
            error: code.to_owned(),
            error_description: description,
            error_uri: None,
        };
        let mut resp = (status, Json(body)).into_response();
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let BffError::MethodNotAllowed(allow) = &self {
            let list = allow
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            if let Ok(v) = HeaderValue::try_from(list) {
                resp.headers_mut().insert(header::ALLOW, v);
            }
        }
        resp
    }
}
