//! The device authorization endpoint (RFC 8628 §3.1, §3.2): a device (a CLI, a TV) asks for a
//! device code and a user code, and the user approves it at `/device` on another screen.
//!
//! parse (`keycard_protocol::device`) → authenticate the client (public clients identify
//! themselves with `client_id`) → decide (`device::authorize`: only clients registered for the
//! grant) → store the hashes of a fresh 256-bit device code and an 8-letter user code, with the
//! address the request came from (the confirmation page shows it) → respond. A user code taken
//! by another live authorization is drawn again. New authorizations per address share the
//! login transactions' rate limit: each is a stored row made before anyone signed in.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use keycard_os::{new_secret, random_bytes};
use keycard_protocol::device::{
    self, DeviceAuthorizationRequest, DeviceAuthorizationResponse, DeviceState, UserCode,
};
use keycard_protocol::{Audience, DeviceCode, ErrorCode, OAuthError};
use keycard_store::{DeviceAuthorization, Store, StoreError};

use crate::access::authenticate_client;
use crate::app::App;
use crate::error::ServerError;
use crate::http::{ClientIp, no_store_json};

/// Fresh user codes tried before giving up (a collision among live codes is rare already).
const USER_CODE_DRAWS: usize = 4;

fn bad(e: OAuthError) -> ServerError {
    ServerError::token(e)
}

pub(crate) async fn device_authorization_post<S: Store>(
    State(app): State<Arc<App<S>>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ServerError> {
    let (params, client) = authenticate_client(&app, &headers, &body).await?;
    let req = DeviceAuthorizationRequest::parse(&params).map_err(bad)?;
    let api = app.api(req.target.as_ref()).await?;
    let lookup = move |id: &Audience| api.as_deref().filter(|a| &a.identifier == id).cloned();
    let resolved = device::authorize(&client, &req, &lookup).map_err(bad)?;
    if !app.may_start_txn(ip) {
        return Err(bad(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "too many device authorizations from this address; try again in a minute",
        )));
    }
    let now = app.now();
    let device_code: DeviceCode = new_secret();
    for _ in 0..USER_CODE_DRAWS {
        let user_code = UserCode::from_random(&random_bytes::<32>());
        let record = DeviceAuthorization {
            hash: device_code.hash(),
            user_code: user_code.hash(),
            client_id: client.id.clone(),
            scope: resolved.scope.clone(),
            audience: resolved.audience.clone(),
            requested_from: Some(ip),
            created_at: now,
            expires_at: now.plus(app.settings.device_code_ttl_secs),
            interval: app.settings.device_poll_interval_secs,
            last_poll_at: None,
            state: DeviceState::Pending,
            grant_id: None,
        };
        match app.store.create_device_authorization(&record).await {
            Ok(()) => {
                let verification_uri = app.settings.issuer.endpoint("/device");
                return Ok(no_store_json(&DeviceAuthorizationResponse {
                    device_code,
                    user_code: user_code.display(),
                    verification_uri_complete: Some(device::verification_uri_complete(
                        &verification_uri,
                        &user_code,
                    )),
                    verification_uri,
                    expires_in: app.settings.device_code_ttl_secs,
                    interval: app.settings.device_poll_interval_secs,
                }));
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ServerError::Internal(
        "no free user code after several draws".into(),
    ))
}
