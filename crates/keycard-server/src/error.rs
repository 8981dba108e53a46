//! The server's error type and its one `IntoResponse`.
//!
//! Protocol errors become responses through `keycard_protocol::wire` only. Storage and internal
//! failures become `temporarily_unavailable` / `server_error` with no detail; the cause goes to
//! the log with the request's span (dropshot's external/internal split).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keycard_protocol::wire::{self, WireError};
use keycard_protocol::{ErrorCode, OAuthError};

/// Which wire shape an endpoint answers errors in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// RFC 6749 §5.2 JSON (token endpoint).
    Token,
    /// RFC 6750 §3 (userinfo).
    Bearer,
}

/// An error on its way to the client.
#[derive(Debug)]
pub enum ServerError {
    Protocol(Shape, OAuthError),
    /// RFC 6750 §3.1: a request without any token gets a bare challenge.
    NoToken,
    Store(keycard_store::StoreError),
    Internal(String),
}

impl ServerError {
    pub fn token(e: OAuthError) -> Self {
        ServerError::Protocol(Shape::Token, e)
    }

    pub fn bearer(e: OAuthError) -> Self {
        ServerError::Protocol(Shape::Bearer, e)
    }
}

impl From<keycard_store::StoreError> for ServerError {
    fn from(e: keycard_store::StoreError) -> Self {
        ServerError::Store(e)
    }
}

/// Turns plain wire data into an axum response.
pub fn wire_response(w: WireError) -> Response {
    let status = StatusCode::from_u16(w.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = if w.body.is_empty() {
        status.into_response()
    } else {
        (status, [(header::CONTENT_TYPE, "application/json")], w.body).into_response()
    };
    if let Some(c) = w
        .www_authenticate
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, c);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        match self {
            ServerError::Protocol(Shape::Token, e) => wire_response(wire::token_error(&e)),
            ServerError::Protocol(Shape::Bearer, e) => {
                wire_response(wire::bearer_error(Some(&e), "keycard"))
            }
            ServerError::NoToken => wire_response(wire::bearer_error(None, "keycard")),
            ServerError::Store(e) => {
                tracing::error!(error = %e, "storage failure");
                let code = match e {
                    keycard_store::StoreError::Unavailable(_) => ErrorCode::TemporarilyUnavailable,
                    keycard_store::StoreError::Conflict
                    | keycard_store::StoreError::NotFound
                    | keycard_store::StoreError::Corrupt(_) => ErrorCode::ServerError,
                };
                wire_response(wire::token_error(&OAuthError::bare(code)))
            }
            ServerError::Internal(e) => {
                tracing::error!(error = %e, "internal failure");
                wire_response(wire::token_error(&OAuthError::bare(ErrorCode::ServerError)))
            }
        }
    }
}
