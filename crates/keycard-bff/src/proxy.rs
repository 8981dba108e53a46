//! The API proxy: everything under the proxy prefix (OAuth 2.0 for Browser-Based Applications
//! §6.1.3.6 allowlisted targets; RFC 9110 §7.6.1 hop-by-hop fields; RFC 6750 §2.1 bearer).
//!
//! In this order: the anti-CSRF header and Fetch Metadata (403); the request-target read once
//! by the gateway's [`CanonicalPath`] — traversal, encoded traversal and any path two decoders
//! could read differently are 403; the allowlist, longest prefix first (403 off it, 405 for a
//! method the route does not list); the session (401 JSON without one); the access token,
//! refreshed ahead of expiry; the body, buffered up to the limit (413) so that the call can be
//! repeated once after a refresh when the upstream answers 401.
//!
//! The upstream receives the target exactly as received under its base path, the browser's
//! headers minus `Cookie`, `Authorization`, the anti-CSRF header, `Host` and the hop-by-hop
//! fields, and `Authorization: Bearer` with the session's access token; the browser receives
//! the upstream's answer minus `Set-Cookie` and the hop-by-hop fields. Tokens never reach the
//! browser. Not here: streaming bodies (both are buffered, up to `max_body_bytes`).

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use keycard_gateway::path::CanonicalPath;

use crate::app::Bff;
use crate::config::ProxyRoute;
use crate::error::BffError;
use crate::session::{Tokens, Why};
use crate::store::SessionRecord;
use crate::web;

/// Hop-by-hop fields (RFC 9110 §7.6.1) and `Host`, never forwarded either way.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

pub(crate) async fn proxy(State(bff): State<Bff>, req: Request) -> Response {
    match forward(&bff, req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

/// The route for a path: longest prefix, then the method.
fn lookup<'a>(
    routes: &'a [ProxyRoute],
    path: &CanonicalPath,
    method: &Method,
) -> Result<&'a ProxyRoute, BffError> {
    let route = routes
        .iter()
        .filter(|r| r.path.matches(path))
        .max_by_key(|r| r.path.as_str().len())
        .ok_or(BffError::Forbidden(
            "the path is not on the proxy's allowlist",
        ))?;
    if !route.methods.contains(method) {
        return Err(BffError::MethodNotAllowed(route.methods.clone()));
    }
    Ok(route)
}

async fn forward(bff: &Bff, req: Request) -> Result<Response, BffError> {
    let settings = &bff.inner.settings;
    let (parts, body) = req.into_parts();
    web::require_api_headers(&parts.headers, &settings.csrf_header, &settings.csrf_value)?;
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let path = CanonicalPath::parse(target)
        .map_err(|_| BffError::Forbidden("the path is ambiguous or malformed"))?;
    let route = lookup(&settings.routes, &path, &parts.method)?;
    let session = bff
        .current_session(&parts.headers)
        .await?
        .ok_or(BffError::Unauthenticated)?;
    let session = bff.fresh_session(session).await?;
    let body = to_bytes(body, settings.max_body_bytes)
        .await
        .map_err(|_| BffError::TooLarge)?;
    let url = format!(
        "{}://{}{}",
        if route.upstream.is_https() {
            "https"
        } else {
            "http"
        },
        route.upstream.authority(),
        route.upstream_target(&path)
    );
    let headers = request_headers(&parts.headers, &settings.csrf_header);

    let first = send(bff, route, &parts.method, &url, &headers, &body, &session).await?;
    if first.status() != reqwest::StatusCode::UNAUTHORIZED || !route.refresh_on_401 {
        return respond(bff, first).await;
    }
    // The upstream refused this access token: refresh once (unless another call already did)
    // and repeat the call with the new one.
    let Some(renewed) = bff
        .refresh(
            session.id,
            Why::Rejected {
                generation: session.generation,
            },
        )
        .await?
    else {
        return Err(BffError::Unauthenticated);
    };
    if renewed.generation == session.generation {
        return respond(bff, first).await;
    }
    let second = send(bff, route, &parts.method, &url, &headers, &body, &renewed).await?;
    respond(bff, second).await
}

/// The browser's headers that the upstream may see.
fn request_headers(incoming: &HeaderMap, csrf: &HeaderName) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in incoming {
        let drop = name == header::COOKIE
            || name == header::AUTHORIZATION
            || name == csrf
            || HOP_BY_HOP.contains(&name.as_str());
        if !drop {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

async fn send(
    bff: &Bff,
    route: &ProxyRoute,
    method: &Method,
    url: &str,
    headers: &HeaderMap,
    body: &Bytes,
    session: &SessionRecord,
) -> Result<reqwest::Response, BffError> {
    let tokens = Tokens::open(bff, session)?;
    let bearer = HeaderValue::try_from(format!("Bearer {}", tokens.access.secret()))
        .map_err(|_| BffError::Internal("the access token is not a header value".into()))?;
    let mut headers = headers.clone();
    headers.insert(header::AUTHORIZATION, bearer);
    bff.inner
        .upstream
        .request(method.clone(), url)
        .headers(headers)
        .body(body.clone())
        .timeout(route.timeout)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                BffError::UpstreamTimeout
            } else {
                BffError::Upstream(e.to_string())
            }
        })
}

async fn respond(bff: &Bff, mut resp: reqwest::Response) -> Result<Response, BffError> {
    let limit = bff.inner.settings.max_body_bytes;
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BffError::TooLarge);
    }
    let status = StatusCode::from_u16(resp.status().as_u16())
        .map_err(|_| BffError::Upstream("invalid status".into()))?;
    let mut headers = HeaderMap::new();
    for (name, value) in resp.headers() {
        if name != header::SET_COOKIE && !HOP_BY_HOP.contains(&name.as_str()) {
            headers.append(name.clone(), value.clone());
        }
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| BffError::Upstream(e.to_string()))?
    {
        if body.len() + chunk.len() > limit {
            return Err(BffError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}
