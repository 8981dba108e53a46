//! `POST {prefix}/backchannel-logout`: the provider ends sessions directly (OpenID Connect
//! Back-Channel Logout 1.0 §2.5–§2.8).
//!
//! The body is a form with `logout_token`. The token is verified (§2.6: signature, `typ`
//! `logout+jwt`, `iss`, `aud`, `iat`, `exp`, `jti`, the logout event, no `nonce`, `sub` and/or
//! `sid`), its `jti` recorded so a replay is refused (§2.6 item 7), and every session of this
//! provider matching its `sid` and/or `sub` ends (§2.7). The answer is 200 with `Cache-Control:
//! no-store`, or 400 with an error document (§2.8); 503 when the provider's keys cannot be
//! loaded, so the provider retries. No cookie and no anti-CSRF header: the caller is the
//! provider, authenticated by the token's signature.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use keycard_protocol::form::Params;
use keycard_validate::ValidationError;

use crate::app::Bff;
use crate::error::BffError;

pub(crate) async fn backchannel_logout_post(State(bff): State<Bff>, body: Bytes) -> Response {
    match backchannel_logout(&bff, &body).await {
        Ok(()) => super::no_store(StatusCode::OK.into_response()),
        Err(e) => e.into_response(),
    }
}

async fn backchannel_logout(bff: &Bff, body: &[u8]) -> Result<(), BffError> {
    let form = Params::parse(body).map_err(|_| BffError::BadRequest("malformed request"))?;
    let token = form
        .get("logout_token")
        .ok_or(BffError::BadRequest("logout_token is missing"))?;
    let logout = bff
        .inner
        .provider
        .verifier
        .verify_logout_token(token)
        .await
        .map_err(|e| match e {
            ValidationError::KeysUnavailable(f) => BffError::Unavailable(f.to_string()),
            e => {
                tracing::warn!(error = %e, "logout token refused");
                BffError::BadRequest("the logout token was refused")
            }
        })?;
    let fresh = bff
        .inner
        .store
        // Remembered past `exp` by the largest leeway, so the token cannot come back within it.
        .record_logout_jti(logout.iss(), logout.jti(), logout.exp().plus(60))
        .await?;
    if !fresh {
        return Err(BffError::BadRequest("the logout token was already used"));
    }
    bff.end_sessions(logout.sub(), logout.sid()).await?;
    Ok(())
}
