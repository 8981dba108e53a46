//! Client authentication shared by the token, introspection and revocation endpoints
//! (RFC 6749 §2.3.1, §3.2.1; RFC 7662 §2.1; RFC 7009 §2.1).

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use keycard_protocol::OAuthError;
use keycard_protocol::form::Params;
use keycard_protocol::policy::Client;
use keycard_protocol::token::ClientAuth;
use keycard_store::Store;

use crate::App;
use crate::error::ServerError;

fn bad(e: OAuthError) -> ServerError {
    ServerError::token(e)
}

/// Parses the form body and authenticates the calling client in constant time.
pub async fn authenticate<S: Store>(
    app: &App<S>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Params, Arc<Client>), ServerError> {
    if !super::is_form(headers) {
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
        .client(auth.client_id().as_str())
        .await?
        .ok_or_else(|| bad(OAuthError::invalid_client("client authentication failed")))?;
    auth.verify(&client).map_err(bad)?;
    Ok((params, client))
}
