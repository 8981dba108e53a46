//! The UserInfo endpoint (OIDC Core §5.3) as a protected resource (RFC 6750).
//!
//! The token comes from `Authorization: Bearer` (any case) or, on POST, the `access_token`
//! form field (RFC 6750 §2.2), through `keycard_protocol::bearer::extract`; both at once is
//! `invalid_request`; a query token is ignored.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use keycard_protocol::claims::{ScopedClaims, UserinfoResponse};
use keycard_protocol::form::Params;
use keycard_protocol::{ErrorCode, OAuthError, Subject, bearer};
use keycard_store::Store;

use crate::access::{is_revoked, verified_access_token};
use crate::app::App;
use crate::error::ServerError;
use crate::http::{is_form, no_store_json};

fn invalid_token(d: &'static str) -> ServerError {
    ServerError::bearer(OAuthError::new(ErrorCode::InvalidToken, d))
}

pub(crate) async fn userinfo<S: Store>(
    State(app): State<Arc<App<S>>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ServerError> {
    let form = if method == Method::POST && is_form(&headers) {
        Some(Params::parse(&body).map_err(ServerError::bearer)?)
    } else {
        None
    };
    let authorization = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .map(HeaderValue::as_bytes);
    let token = bearer::extract(
        authorization,
        form.as_ref().and_then(|f| f.get("access_token")),
    )
    .map_err(ServerError::bearer)?
    .ok_or(ServerError::NoToken)?;
    let claims = verified_access_token(&app, token)
        .ok_or_else(|| invalid_token("the access token is invalid or expired"))?;
    if !claims
        .aud()
        .contains(&app.settings.issuer.userinfo_audience())
    {
        return Err(invalid_token("the access token is not for this endpoint"));
    }
    if !claims.has_scope("openid") {
        return Err(ServerError::bearer(OAuthError::new(
            ErrorCode::InsufficientScope,
            "the openid scope is required",
        )));
    }
    if is_revoked(&app, &claims, false)
        .await
        .map_err(ServerError::bearer_store)?
    {
        return Err(invalid_token("the access token was revoked"));
    }
    let user = match app
        .store
        .user_by_id(&claims.sub().to_user_id())
        .await
        .map_err(ServerError::bearer_store)?
    {
        Some(u) if !u.disabled => u,
        _ => return Err(invalid_token("the user is not active")),
    };
    let body = UserinfoResponse {
        sub: Subject::from(&user.id),
        claims: ScopedClaims::for_scope(&user.profile(), claims.scope()),
    };
    Ok(no_store_json(&body))
}
