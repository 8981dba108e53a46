//! Token introspection (RFC 7662).
//!
//! Callers authenticate as confidential clients (resource servers register as clients).
//! An access token is active when its signature verifies against our keys, it has not
//! expired, it was not revoked (by `jti` or through its grant), its user is still active, and
//! the caller may see it (`keycard_protocol::introspect::is_visible_to`). A refresh token is
//! active for its own client only. Everything else — expired, revoked, unknown, malformed,
//! foreign — is `{"active": false}` and nothing more (§2.2, §4).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use keycard_protocol::introspect::{IntrospectionResponse, is_visible_to};
use keycard_protocol::policy::Client;
use keycard_protocol::{OAuthError, RefreshToken, Subject};
use keycard_store::Store;

use keycard_validate::AccessToken;

use crate::access::{authenticate_client, is_revoked};
use crate::app::App;
use crate::error::ServerError;
use crate::http::{no_store_json, no_store_json_bytes};
use crate::verified::Verified;

pub(crate) async fn introspect_post<S: Store>(
    State(app): State<Arc<App<S>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ServerError> {
    let (params, client) = authenticate_client(&app, &headers, &body).await?;
    if !client.is_confidential() {
        return Err(ServerError::token(OAuthError::invalid_client(
            "introspection needs a confidential client",
        )));
    }
    let token = params.require("token").map_err(ServerError::token)?;
    // The hint only orders the lookups (RFC 7662 §2.1); both kinds are always tried.
    let answer = match access_token(&app, &client, token).await? {
        Some(Answer::Bytes(b)) => return Ok(no_store_json_bytes(b)),
        Some(Answer::Doc(v)) => v,
        // Boxed, as the store read below: the cold paths' store futures would otherwise make
        // every introspection's future as large as theirs (see `cache::TtlCache::get_or_load`).
        None => Box::pin(refresh_token(&app, &client, token))
            .await?
            .unwrap_or_else(IntrospectionResponse::inactive),
    };
    Ok(no_store_json(&answer))
}

/// An access token's answer: a document, or one already serialised (what the verified-token
/// cache keeps, so a repeated answer is not built again).
enum Answer {
    Doc(IntrospectionResponse),
    Bytes(Bytes),
}

/// `None` when the string is not one of our live access tokens.
async fn access_token<S: Store>(
    app: &App<S>,
    caller: &Client,
    token: &str,
) -> Result<Option<Answer>, ServerError> {
    let keys = app.keys.current();
    let key = keycard_validate::token_digest(token);
    // The stamp is read before the store is asked, so a revocation written meanwhile changes
    // it and the answer below is not reused (see `verified`).
    let stamp = app.feed.stamp();
    if let Some(stamp) = stamp
        && let Some(v) = keys.verified.get(&key, stamp, app.now())
    {
        crate::metrics::introspection_cached();
        return Ok(Some(
            if is_visible_to(caller, v.token.client_id(), v.token.aud()) {
                Answer::Bytes(v.answer.clone())
            } else {
                Answer::Doc(IntrospectionResponse::inactive())
            },
        ));
    }
    let Some(c) = keys.verifier.verify(token, app.now()).ok() else {
        return Ok(None);
    };
    // Tokens for a user also stop being active when the user is disabled or removed; one
    // store query answers both questions.
    if !is_visible_to(caller, c.client_id(), c.aud()) || Box::pin(is_revoked(app, &c, true)).await?
    {
        return Ok(Some(Answer::Doc(IntrospectionResponse::inactive())));
    }
    let answer = active(&c);
    let Some(stamp) = stamp else {
        return Ok(Some(Answer::Doc(answer)));
    };
    let bytes =
        Bytes::from(serde_json::to_vec(&answer).map_err(|e| ServerError::Internal(e.to_string()))?);
    let v = Verified {
        token: c,
        answer: bytes.clone(),
    };
    keys.verified.insert(key, stamp, Arc::new(v));
    Ok(Some(Answer::Bytes(bytes)))
}

fn active(c: &AccessToken) -> IntrospectionResponse {
    IntrospectionResponse {
        active: true,
        scope: c.scope().clone(),
        client_id: Some(c.client_id().clone()),
        sub: Some(c.sub().clone()),
        aud: c.aud().to_vec(),
        iss: Some(c.iss().clone()),
        exp: Some(c.exp()),
        iat: Some(c.iat()),
        jti: Some(c.jti().clone()),
        token_type: Some("Bearer".into()),
    }
}

async fn refresh_token<S: Store>(
    app: &App<S>,
    caller: &Client,
    token: &str,
) -> Result<Option<IntrospectionResponse>, ServerError> {
    let Ok(secret) = RefreshToken::parse(token) else {
        return Ok(None);
    };
    let Some(rt) = app.store.refresh_token(&secret.hash()).await? else {
        return Ok(None);
    };
    let live = !rt.used
        && !rt.grant_revoked
        && rt.user_active
        && app.now() < rt.expires_at
        && rt.grant.client_id == caller.id;
    if !live {
        return Ok(Some(IntrospectionResponse::inactive()));
    }
    Ok(Some(IntrospectionResponse {
        active: true,
        scope: rt.scope.clone(),
        client_id: Some(rt.grant.client_id.clone()),
        sub: Some(Subject::from(&rt.grant.user_id)),
        iss: Some(app.settings.issuer.clone()),
        exp: Some(rt.expires_at),
        token_type: Some("refresh_token".into()),
        ..IntrospectionResponse::default()
    }))
}
