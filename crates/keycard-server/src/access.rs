//! The access checks that several endpoints share: authenticating the calling client (token,
//! introspection and revocation endpoints; RFC 6749 §2.3.1, RFC 7662 §2.1, RFC 7009 §2.1) and
//! judging one of our own access tokens (userinfo, introspection, revocation).
//!
//! [`authenticate_client`] parses the form and checks the credentials in constant time;
//! [`verified_access_token`] checks a JWT with our keys and the resource servers' rules
//! (`keycard_validate::LocalVerifier`); [`is_revoked`] asks the store whether it, its grant or
//! its user has since been revoked, in one query.

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use keycard_protocol::claims::jti_grant;
use keycard_protocol::client_auth::ClientAuth;
use keycard_protocol::form::Params;
use keycard_protocol::policy::Client;
use keycard_protocol::{OAuthError, UserId};
use keycard_store::{RevocationQuery, Store, StoreError};
use keycard_validate::AccessToken;

use crate::app::App;
use crate::error::ServerError;
use crate::http::is_form;

fn bad(e: OAuthError) -> ServerError {
    ServerError::token(e)
}

/// Parses the form body and authenticates the calling client in constant time.
pub(crate) async fn authenticate_client<S: Store>(
    app: &App<S>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Params, Arc<Client>), ServerError> {
    if !is_form(headers) {
        return Err(bad(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        )));
    }
    let params = Params::parse(body).map_err(bad)?;
    let authorization = match headers.get(header::AUTHORIZATION) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| bad(OAuthError::invalid_client("malformed Authorization header")))?,
        ),
        None => None,
    };
    let auth = ClientAuth::parse(authorization, &params).map_err(bad)?;
    let client = app
        .client(auth.client_id())
        .await?
        .ok_or_else(|| bad(OAuthError::invalid_client("client authentication failed")))?;
    auth.verify(&client).map_err(bad)?;
    Ok((params, client))
}

/// Authenticates a client from its `Authorization: Basic` header alone, for the GET endpoints
/// (the revocation feed). Confidential clients only.
pub(crate) async fn authenticate_basic<S: Store>(
    app: &App<S>,
    headers: &HeaderMap,
) -> Result<Arc<Client>, ServerError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str())
        .transpose()
        .map_err(|_| bad(OAuthError::invalid_client("malformed Authorization header")))?
        .ok_or_else(|| {
            bad(OAuthError::invalid_client(
                "client authentication is missing",
            ))
        })?;
    let auth = ClientAuth::parse(Some(authorization), &Params::default()).map_err(bad)?;
    let client = app
        .client(auth.client_id())
        .await?
        .ok_or_else(|| bad(OAuthError::invalid_client("client authentication failed")))?;
    auth.verify(&client).map_err(bad)?;
    if !client.is_confidential() {
        return Err(bad(OAuthError::invalid_client(
            "this endpoint needs a confidential client",
        )));
    }
    Ok(client)
}

/// Verifies one of our JWT access tokens (signature with our parsed keys, `typ`, `iss`, time);
/// `None` when the string is not one of our live access tokens.
pub(crate) fn verified_access_token<S: Store>(app: &App<S>, token: &str) -> Option<AccessToken> {
    app.keys.current().verifier.verify(token, app.now()).ok()
}

/// Whether a verified token has since been revoked: by `jti`, through its grant, because its
/// client is gone or was re-created, or — with `check_user` — because its user is disabled,
/// gone, or had every sign-in ended since (a password change). Machine tokens have no user.
pub(crate) async fn is_revoked<S: Store>(
    app: &App<S>,
    token: &AccessToken,
    check_user: bool,
) -> Result<bool, StoreError> {
    let user: Option<UserId> =
        (check_user && !token.is_machine()).then(|| token.sub().to_user_id());
    let grant = jti_grant(token.jti());
    app.store
        .access_token_revoked(&RevocationQuery {
            jti: token.jti(),
            grant: grant.as_ref(),
            user: user.as_ref(),
            client: token.client_id(),
            iat: token.iat(),
        })
        .await
}
