//! The UserInfo endpoint (OIDC Core §5.3) as a protected resource (RFC 6750).
//!
//! The token comes from `Authorization: Bearer` (any case) or, on POST, the `access_token`
//! form field (RFC 6750 §2.2); both at once is `invalid_request`; a query token is ignored.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use keycard_protocol::claims::{ScopedClaims, UserinfoResponse, jti_grant};
use keycard_protocol::form::Params;
use keycard_protocol::{ErrorCode, OAuthError, ScopeSet};
use keycard_store::Store;

use crate::App;
use crate::error::ServerError;

fn invalid_token(d: &'static str) -> ServerError {
    ServerError::bearer(OAuthError::new(ErrorCode::InvalidToken, d))
}

fn bearer_token(headers: &HeaderMap, method: &Method, body: &[u8]) -> Result<String, ServerError> {
    let from_header = match headers.get(header::AUTHORIZATION) {
        Some(v) => {
            let v = v.to_str().map_err(|_| {
                ServerError::bearer(OAuthError::invalid_request(
                    "malformed Authorization header",
                ))
            })?;
            match v.split_once(' ') {
                Some((scheme, t))
                    if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() =>
                {
                    Some(t.trim().to_owned())
                }
                _ => {
                    return Err(ServerError::bearer(OAuthError::invalid_request(
                        "use the Bearer scheme",
                    )));
                }
            }
        }
        None => None,
    };
    let from_body = if method == Method::POST && super::is_form(headers) {
        Params::parse(body)
            .map_err(ServerError::bearer)?
            .get("access_token")
            .map(str::to_owned)
    } else {
        None
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(ServerError::bearer(OAuthError::invalid_request(
            "send the token one way only",
        ))),
        (Some(t), None) | (None, Some(t)) => Ok(t),
        (None, None) => Err(ServerError::NoToken),
    }
}

pub async fn userinfo<S: Store>(
    State(app): State<Arc<App<S>>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ServerError> {
    let token = bearer_token(&headers, &method, &body)?;
    let claims = super::introspect::verified_access_token(&app, &token)
        .ok_or_else(|| invalid_token("the access token is invalid or expired"))?;
    if !claims
        .aud()
        .contains(&app.settings.issuer.userinfo_audience())
    {
        return Err(invalid_token("the access token is not for this endpoint"));
    }
    let scope = ScopeSet::parse(
        claims
            .claims()
            .get("scope")
            .and_then(serde_json::Value::as_str)
            .unwrap_or(""),
    )
    .unwrap_or_default();
    if !scope.contains("openid") {
        return Err(ServerError::bearer(OAuthError::new(
            ErrorCode::InsufficientScope,
            "the openid scope is required",
        )));
    }
    if app
        .store
        .access_token_revoked(claims.jti(), jti_grant(claims.jti()), None)
        .await?
    {
        return Err(invalid_token("the access token was revoked"));
    }
    let user = match app.store.user_by_id(claims.sub()).await? {
        Some(u) if !u.disabled => u,
        _ => return Err(invalid_token("the user is not active")),
    };
    let body = UserinfoResponse {
        sub: user.id.clone(),
        claims: ScopedClaims::for_scope(&super::token::profile(&user), &scope),
    };
    let mut r = Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
