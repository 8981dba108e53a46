//! Small HTTP helpers every route uses: HTML and JSON responses with the right caching, the
//! 303 redirect, form content-type detection and the client's address.
//!
//! The client address is the `keycard_serve::ClientAddr` the listener attached: the TCP peer,
//! or what a configured trusted proxy forwarded. The request id is `crate::edge`'s.
//!
//! No protocol decisions and no store access here; those sit above (`access`, `flow`, `pages`).

use std::net::{IpAddr, Ipv4Addr};

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keycard_serve::ClientAddr;
use serde::Serialize;

/// An HTML page with `Cache-Control: no-store` (the security headers come from the layers).
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// A JSON document that must not be cached (RFC 6749 §5.1, RFC 7662 §2.2: it may carry
/// tokens or what is known about one).
pub(crate) fn no_store_json<T: Serialize>(body: &T) -> Response {
    no_store(Json(body).into_response())
}

/// [`no_store_json`] for a document already serialised (the introspection cache keeps its
/// answers as bytes).
pub(crate) fn no_store_json_bytes(body: axum::body::Bytes) -> Response {
    no_store(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// A 303 See Other (RFC 9700 §4.12: never 307 after a form post with credentials).
pub(crate) fn redirect_303(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Adds `Retry-After` (RFC 9110 §10.2.3) to a throttled answer.
pub(crate) fn retry_after(mut r: Response, secs: i64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Whether a form body is `application/x-www-form-urlencoded`.
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The client's address: the peer, or what a trusted proxy forwarded (none by default).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub(crate) IpAddr);

impl<St: Send + Sync> FromRequestParts<St> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ClientAddr>()
            .map(ClientAddr::ip)
            // Only in-process tests have no listener; they share one address.
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(ClientIp(ip))
    }
}
