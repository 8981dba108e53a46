//! Discovery (RFC 8414 §2, §3; OpenID Connect Discovery §3; RFC 8628 §4) and JWKS (RFC 7517 §5).
//! Both are precomputed bytes; the JWKS changes only when keys rotate.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use keycard_jose::Alg;
use keycard_protocol::discovery::ProviderMetadata;
use keycard_store::Store;

use crate::app::App;
use crate::settings::Settings;

/// The metadata document. It advertises exactly what is implemented.
pub(crate) fn document(s: &Settings, alg: Alg) -> Bytes {
    let iss = &s.issuer;
    let list = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let doc = ProviderMetadata {
        issuer: Some(iss.clone()),
        authorization_endpoint: Some(iss.endpoint("/authorize")),
        token_endpoint: Some(iss.endpoint("/token")),
        userinfo_endpoint: Some(iss.endpoint("/userinfo")),
        jwks_uri: Some(iss.endpoint("/jwks.json")),
        introspection_endpoint: Some(iss.endpoint("/introspect")),
        introspection_endpoint_auth_methods_supported: list(&[
            "client_secret_basic",
            "client_secret_post",
        ]),
        revocation_endpoint: Some(iss.endpoint("/revoke")),
        revocation_endpoint_auth_methods_supported: list(&[
            "client_secret_basic",
            "client_secret_post",
            "none",
        ]),
        scopes_supported: list(keycard_protocol::OIDC_SCOPES),
        response_types_supported: list(&["code"]),
        response_modes_supported: list(&["query"]),
        grant_types_supported: list(&[
            "authorization_code",
            "refresh_token",
            "client_credentials",
            keycard_protocol::device::GRANT_TYPE,
        ]),
        subject_types_supported: list(&["public"]),
        id_token_signing_alg_values_supported: list(&[alg.as_str()]),
        token_endpoint_auth_methods_supported: list(&[
            "client_secret_basic",
            "client_secret_post",
            "none",
        ]),
        code_challenge_methods_supported: list(&["S256"]),
        prompt_values_supported: list(&["none", "login", "consent", "select_account"]),
        claims_supported: list(&[
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "at_hash",
            "sid",
            "azp",
            "name",
            "given_name",
            "family_name",
            "picture",
            "email",
            "email_verified",
        ]),
        authorization_response_iss_parameter_supported: Some(true),
        request_parameter_supported: Some(false),
        request_uri_parameter_supported: Some(false),
        claims_parameter_supported: Some(false),
        end_session_endpoint: Some(iss.endpoint("/logout")),
        device_authorization_endpoint: Some(iss.endpoint("/device_authorization")),
        backchannel_logout_supported: Some(true),
        backchannel_logout_session_supported: Some(true),
        keycard_revocation_feed_endpoint: Some(iss.endpoint("/revocations")),
    };
    Bytes::from(serde_json::to_vec(&doc).unwrap_or_default())
}

pub(crate) async fn discovery_get<S: Store>(State(app): State<Arc<App<S>>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        app.discovery.clone(),
    )
        .into_response()
}

pub(crate) async fn jwks_get<S: Store>(State(app): State<Arc<App<S>>>) -> Response {
    // Short caching: a rotated-in key is published as "next" well before it signs.
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=60"),
        ],
        app.keys.current().jwks_bytes.clone(),
    )
        .into_response()
}
