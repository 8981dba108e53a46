//! Token revocation (RFC 7009).
//!
//! A client revokes its own tokens: a refresh token revokes its whole grant (the family, and the
//! access tokens issued from it); an access token is recorded by `jti` until it expires. Unknown
//! tokens and other clients' tokens get 200 and are left alone (§2.2). A storage failure is
//! never reported as success (Hydra CVE-2020-15223).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keycard_protocol::RefreshToken;
use keycard_store::{Revocation, Store};

use crate::access::{authenticate_client, verified_access_token};
use crate::app::App;
use crate::error::ServerError;

pub(crate) async fn revoke_post<S: Store>(
    State(app): State<Arc<App<S>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ServerError> {
    let (params, client) = authenticate_client(&app, &headers, &body).await?;
    let token = params.require("token").map_err(ServerError::token)?;
    if let Some(c) = verified_access_token(&app, token) {
        if c.client_id() == &client.id {
            // The event matters until the token would have expired.
            let r = Revocation {
                at: app.now(),
                until: c.exp(),
            };
            app.revoking(app.store.revoke_access_token(c.jti(), r))
                .await?;
            tracing::info!(client = %client.id, "access token revoked");
        }
    } else if let Ok(secret) = RefreshToken::parse(token)
        && let Some(rt) = app.store.refresh_token(&secret.hash()).await?
        && rt.grant.client_id == client.id
    {
        app.revoking(app.store.revoke_grant(&rt.grant.id, app.revocation()))
            .await?;
        tracing::info!(client = %client.id, grant = %rt.grant.id, "refresh token revoked");
    }
    let mut r = StatusCode::OK.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
