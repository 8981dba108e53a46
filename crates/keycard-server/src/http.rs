//! Small HTTP helpers every route uses: HTML and JSON responses with the right caching, the
//! 303 redirect, form content-type detection, the client's address and the request id.
//!
//! The client address is the `keycard_serve::ClientAddr` the listener attached: the TCP peer,
//! or what a configured trusted proxy forwarded. A request id is believed only from a trusted
//! proxy; anyone else's is replaced, so a client cannot choose the id its requests are logged
//! under (or forge another request's).
//!
//! No protocol decisions and no store access here; those sit above (`access`, `flow`, `pages`).

use std::net::{IpAddr, Ipv4Addr};

use axum::Json;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
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
    let mut r = Json(body).into_response();
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

/// The longest request id accepted from a trusted proxy.
const MAX_REQUEST_ID: usize = 128;

/// Drops an incoming `X-Request-Id` unless a trusted proxy sent exactly one that is 1 to 128
/// characters of `A-Z a-z 0-9 - _ . : + / =` (UUIDs, hex and base64 ids), so the request-id
/// layer after this one generates a fresh id for everyone else.
pub(crate) async fn request_id_from_trusted_proxy_only(mut req: Request, next: Next) -> Response {
    let trusted = req
        .extensions()
        .get::<ClientAddr>()
        .is_some_and(ClientAddr::is_from_trusted_proxy);
    let mut ids = req.headers().get_all(REQUEST_ID).iter();
    let well_formed = match (ids.next(), ids.next()) {
        (Some(id), None) => is_request_id(id.as_bytes()),
        _ => false,
    };
    if !(trusted && well_formed) {
        req.headers_mut().remove(REQUEST_ID);
    }
    next.run(req).await
}

/// The header carrying the request id, in and out.
pub(crate) const REQUEST_ID: &str = "x-request-id";

fn is_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+/=".contains(b))
}

/// The address a request is logged under: the client's, or `-` outside a listener.
pub(crate) fn logged_client(req: &Request<impl Sized>) -> String {
    req.extensions()
        .get::<ClientAddr>()
        .map_or_else(|| "-".to_owned(), |c| c.ip().to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_short_and_plain() {
        for ok in [
            "a",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "Root=1-5759e988:x/y+z_",
        ] {
            assert!(super::is_request_id(ok.as_bytes()), "{ok}");
        }
        let long = "a".repeat(129);
        for bad in ["", "a b", "a\"b", "<script>", "id\n", long.as_str()] {
            assert!(!super::is_request_id(bad.as_bytes()), "{bad}");
        }
    }
}
