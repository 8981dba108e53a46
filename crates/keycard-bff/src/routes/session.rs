//! `GET {prefix}/session`: who is signed in, as JSON for the page's script; never a redirect.
//!
//! Requires the anti-CSRF header (and refuses `Sec-Fetch-Site: cross-site`) like an API call,
//! so another site cannot probe it. Answers `{"authenticated": false}` without a live session,
//! else `{"authenticated": true, "sub", "name", "email", "expires_at", "logout_url",
//! "csrf_token"}`: `expires_at` is when the session ends unless used (the earlier of the idle
//! and the absolute timeout), `logout_url` the form action for signing out and `csrf_token`
//! the token such a plain form carries.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use serde_json::json;

use crate::app::Bff;
use crate::web;

pub(crate) async fn session_get(State(bff): State<Bff>, headers: HeaderMap) -> Response {
    let s = &bff.inner.settings;
    if let Err(e) = web::require_api_headers(&headers, &s.csrf_header, &s.csrf_value) {
        return e.into_response();
    }
    let session = match bff.current_session(&headers).await {
        Ok(session) => session,
        Err(e) => return e.into_response(),
    };
    let body = match session {
        None => json!({"authenticated": false}),
        Some(session) => json!({
            "authenticated": true,
            "sub": session.sub,
            "name": session.profile.name,
            "email": session.profile.email,
            "expires_at": session.idle_expires_at.min(session.expires_at),
            "logout_url": format!("{}/logout", s.prefix_str()),
            "csrf_token": bff.inner.sealer.csrf_token(&session.id),
        }),
    };
    super::no_store(Json(body).into_response())
}
