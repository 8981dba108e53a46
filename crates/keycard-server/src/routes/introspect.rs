//! Token introspection (RFC 7662).
//!
//! Callers authenticate as confidential clients (resource servers register as clients).
//! An access token is active when its signature verifies against our keys, it has not
//! expired, it was not revoked (by `jti` or through its grant), its user is still active, and
//! the caller may see it: the caller issued it, or one of the caller's registered audiences is
//! in its `aud`. A refresh token is active for its own client only. Everything else — expired,
//! revoked, unknown, malformed, foreign — is `{"active": false}` and nothing more (§2.2, §4).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use keycard_protocol::claims;
use keycard_protocol::policy::Client;
use keycard_protocol::{OAuthError, Secret};
use keycard_store::Store;
use keycard_validate::AccessToken;
use serde_json::{Value, json};

use crate::App;
use crate::error::ServerError;

fn respond(v: Value) -> Response {
    let mut r = Json(v).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub async fn introspect_post<S: Store>(
    State(app): State<Arc<App<S>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ServerError> {
    let (params, client) = super::client_auth::authenticate(&app, &headers, &body).await?;
    if !client.is_confidential() {
        return Err(ServerError::token(OAuthError::invalid_client(
            "introspection needs a confidential client",
        )));
    }
    let token = params
        .require("token")
        .map_err(ServerError::token)?
        .to_owned();
    // The hint only orders the lookups (RFC 7662 §2.1); both kinds are always tried.
    let answer = match access_token(&app, &client, &token).await? {
        Some(v) => v,
        None => refresh_token(&app, &client, &token)
            .await?
            .unwrap_or_else(inactive),
    };
    Ok(respond(answer))
}

fn inactive() -> Value {
    json!({ "active": false })
}

/// Verifies a JWT access token (signature with our parsed keys, `typ`, `iss`, time); `None`
/// when the string is not one of our live access tokens.
pub(crate) fn verified_access_token<S: Store>(app: &App<S>, token: &str) -> Option<AccessToken> {
    let now = u64::try_from(app.now().secs()).ok()?;
    app.keys.current().verifier.verify(token, now).ok()
}

async fn access_token<S: Store>(
    app: &App<S>,
    caller: &Client,
    token: &str,
) -> Result<Option<Value>, ServerError> {
    let Some(c) = verified_access_token(app, token) else {
        return Ok(None);
    };
    let visible =
        c.client_id() == caller.id.as_str() || caller.audiences.iter().any(|a| c.aud().contains(a));
    // Tokens for a user also stop being active when the user is disabled or removed; one
    // store query answers both questions.
    let user = (c.sub() != c.client_id()).then(|| c.sub());
    if !visible
        || app
            .store
            .access_token_revoked(c.jti(), claims::jti_grant(c.jti()), user)
            .await?
    {
        return Ok(Some(inactive()));
    }
    Ok(Some(json!({
        "active": true,
        "scope": c.claims().get("scope").cloned().unwrap_or(Value::Null),
        "client_id": c.client_id(),
        "sub": c.sub(),
        // As the token says it: one string or an array (RFC 7519 §4.1.3).
        "aud": c.claims().get("aud").cloned().unwrap_or(Value::Null),
        "iss": c.iss(),
        "exp": c.exp(),
        "iat": c.iat(),
        "jti": c.jti(),
        "token_type": "Bearer",
    })))
}

async fn refresh_token<S: Store>(
    app: &App<S>,
    caller: &Client,
    token: &str,
) -> Result<Option<Value>, ServerError> {
    let Ok(secret) = Secret::parse(token) else {
        return Ok(None);
    };
    let Some(rt) = app.store.refresh_token(&secret.hash()).await? else {
        return Ok(None);
    };
    let live = !rt.used
        && !rt.grant_revoked
        && app.now() < rt.expires_at
        && rt.grant.client_id == caller.id.as_str();
    if !live {
        return Ok(Some(inactive()));
    }
    match app.store.user_by_id(&rt.grant.user_id).await? {
        Some(u) if !u.disabled => {}
        _ => return Ok(Some(inactive())),
    }
    Ok(Some(json!({
        "active": true,
        "scope": rt.scope.to_wire(),
        "client_id": rt.grant.client_id,
        "sub": rt.grant.user_id,
        "iss": app.settings.issuer.as_str(),
        "exp": rt.expires_at.secs(),
        "token_type": "refresh_token",
    })))
}
