//! Discovery (RFC 8414 §2, §3; OpenID Connect Discovery §3) and JWKS (RFC 7517 §5).
//! Both are precomputed bytes; the JWKS changes only when keys rotate.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use keycard_jose::Alg;
use keycard_store::Store;

use crate::{App, Settings};

/// The metadata document. It advertises exactly what is implemented.
pub fn document(s: &Settings, alg: Alg) -> Bytes {
    let iss = s.issuer.as_str();
    let doc = serde_json::json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "userinfo_endpoint": format!("{iss}/userinfo"),
        "jwks_uri": format!("{iss}/jwks.json"),
        "introspection_endpoint": format!("{iss}/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint": format!("{iss}/revoke"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": keycard_protocol::OIDC_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [alg.as_str()],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "azp",
            "name", "given_name", "family_name", "picture", "email", "email_verified"],
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
    });
    Bytes::from(doc.to_string())
}

pub async fn discovery_get<S: Store>(State(app): State<Arc<App<S>>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        app.discovery.clone(),
    )
        .into_response()
}

pub async fn jwks_get<S: Store>(State(app): State<Arc<App<S>>>) -> Response {
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
