//! HTTP routes, one file per endpoint or page, and [`router`], which mounts them behind the
//! shared middleware; [`metrics_router`] is `/metrics` alone, for a separate listener. Route
//! files never call each other: what they share lives below them (`flow`, `pages`, `access`,
//! `http`).

pub(crate) mod authorize;
pub(crate) mod consent;
pub(crate) mod demo;
pub(crate) mod device;
pub(crate) mod device_authorization;
pub(crate) mod discovery;
pub(crate) mod health;
pub(crate) mod introspect;
pub(crate) mod login;
pub(crate) mod logout;
pub(crate) mod revocations;
pub(crate) mod revoke;
pub(crate) mod token;
pub(crate) mod userinfo;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use keycard_store::Store;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::app::App;
use crate::http;

/// Largest accepted request body (form posts are small; anything bigger is a 413).
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// Builds the router with every endpoint and the shared middleware.
pub fn router<S: Store>(app: Arc<App<S>>) -> Router {
    let mut r = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::discovery_get::<S>),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::discovery_get::<S>),
        )
        .route("/jwks.json", get(discovery::jwks_get::<S>))
        .route(
            "/authorize",
            get(authorize::authorize_get::<S>).post(authorize::authorize_post::<S>),
        )
        .route(
            "/login",
            get(login::login_get::<S>).post(login::login_post::<S>),
        )
        .route(
            "/consent",
            get(consent::consent_get::<S>).post(consent::consent_post::<S>),
        )
        .route(
            "/logout",
            get(logout::logout_get::<S>).post(logout::logout_post::<S>),
        )
        .route(
            "/token",
            post(token::token_post::<S>).fallback(token::method_not_allowed),
        )
        .route(
            "/device_authorization",
            post(device_authorization::device_authorization_post::<S>)
                .fallback(token::method_not_allowed),
        )
        .route(
            "/device",
            get(device::device_get::<S>).post(device::device_post::<S>),
        )
        .route(
            "/introspect",
            post(introspect::introspect_post::<S>).fallback(token::method_not_allowed),
        )
        .route(
            "/revoke",
            post(revoke::revoke_post::<S>).fallback(token::method_not_allowed),
        )
        .route(
            "/userinfo",
            get(userinfo::userinfo::<S>).post(userinfo::userinfo::<S>),
        )
        .route("/revocations", get(revocations::revocations_get::<S>))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz::<S>));
    if app.settings.demo {
        r = r
            .route("/demo", get(demo::demo_get::<S>))
            .route("/demo/callback", any(demo::callback_get::<S>));
    }
    let request_id = HeaderName::from_static(http::REQUEST_ID);
    r.fallback(not_found)
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    let id = req.headers().get(http::REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    let client = http::logged_client(req);
                    // The path only: queries can carry transaction handles.
                    tracing::info_span!("request", id = %id, client = %client, method = %req.method(), path = %req.uri().path())
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::from_fn(http::request_id_from_trusted_proxy_only))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(CatchPanicLayer::new())
        .with_state(app)
}

/// `/metrics` (Prometheus text), for a listener of its own: it is never on the public router,
/// since its labels describe traffic to anyone who asks.
pub fn metrics_router() -> Router {
    Router::new().route("/metrics", get(health::metrics_get))
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"error":"not_found"}"#,
    )
        .into_response()
}
