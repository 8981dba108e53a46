//! The JSON endpoints' error type and its one `IntoResponse`.
//!
//! Protocol errors become responses through `keycard_protocol::wire` only, and through
//! `keycard_validate::wire_response`, the adapter the resource servers and the gateway use too,
//! so every Keycard service answers alike. Storage and internal failures become
//! `temporarily_unavailable` / `server_error` with no detail; the cause goes to the log with the
//! request's span (dropshot's external/internal split). HTML pages have their own error type
//! (`pages::PageError`).

use axum::response::{IntoResponse, Response};
use keycard_protocol::wire;
use keycard_protocol::{ErrorCode, OAuthError};
use keycard_store::StoreError;
use keycard_validate::wire_response;

/// Which wire shape an endpoint answers errors in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// RFC 6749 §5.2 JSON (token, introspection, revocation endpoints).
    Token,
    /// RFC 6750 §3 (userinfo, a protected resource).
    Bearer,
}

/// The realm of Keycard's own protected resource (`/userinfo`).
const REALM: &str = "keycard";

/// An error on its way to the client.
#[derive(Debug)]
pub(crate) enum ServerError {
    Protocol(Shape, OAuthError),
    /// RFC 6750 §3.1: a request without any token gets a bare challenge.
    NoToken,
    Store(Shape, StoreError),
    Internal(String),
}

impl ServerError {
    pub(crate) fn token(e: OAuthError) -> Self {
        ServerError::Protocol(Shape::Token, e)
    }

    pub(crate) fn bearer(e: OAuthError) -> Self {
        ServerError::Protocol(Shape::Bearer, e)
    }

    /// A storage failure at a protected resource answers in RFC 6750's shape.
    pub(crate) fn bearer_store(e: StoreError) -> Self {
        ServerError::Store(Shape::Bearer, e)
    }
}

impl From<StoreError> for ServerError {
    fn from(e: StoreError) -> Self {
        ServerError::Store(Shape::Token, e)
    }
}

fn respond(shape: Shape, e: &OAuthError) -> Response {
    match shape {
        Shape::Token => wire_response(wire::token_error(e)),
        Shape::Bearer => wire_response(wire::bearer_error(Some(e), Some(REALM), None)),
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        match self {
            ServerError::Protocol(shape, e) => respond(shape, &e),
            ServerError::NoToken => wire_response(wire::bearer_error(None, Some(REALM), None)),
            ServerError::Store(shape, e) => {
                tracing::error!(error = %e, "storage failure");
                let code = match e {
                    StoreError::Unavailable(_) => ErrorCode::TemporarilyUnavailable,
                    StoreError::Conflict | StoreError::NotFound | StoreError::Corrupt(_) => {
                        ErrorCode::ServerError
                    }
                };
                respond(shape, &OAuthError::bare(code))
            }
            ServerError::Internal(e) => {
                tracing::error!(error = %e, "internal failure");
                respond(Shape::Token, &OAuthError::bare(ErrorCode::ServerError))
            }
        }
    }
}
