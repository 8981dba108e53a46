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
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use keycard_store::Store;

use crate::app::App;

/// Largest accepted request body (form posts are small; anything bigger is a 413).
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// Every path the router serves (all are fixed paths): the metrics' endpoint labels.
const ROUTES: &[&str] = &[
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    "/jwks.json",
    "/authorize",
    "/login",
    "/consent",
    "/logout",
    "/token",
    "/introspect",
    "/revoke",
    "/userinfo",
    "/revocations",
    "/healthz",
    "/readyz",
    "/demo",
    "/demo/callback",
];

/// Builds the router with every endpoint and the shared middleware (`crate::edge`).
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
    crate::edge::wrap(r.fallback(not_found).with_state(app), ROUTES, MAX_BODY)
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
