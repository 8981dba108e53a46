//! Demo pages (`keycard demo` only): `/demo` plays an app that starts a code + PKCE sign-in,
//! and `/demo/callback` shows what the app receives and the curl command that redeems it.
//! The verifier sits in a cookie here because this page *is* the app; Keycard itself never
//! sees a verifier before the token request.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use keycard_protocol::form::Params;
use keycard_protocol::pkce::{CodeChallenge, CodeVerifier};
use keycard_store::Store;
use serde_json::json;

use keycard_os::{new_id, random_bytes};
use keycard_protocol::{Nonce, State as OAuthState};

use crate::app::App;
use crate::http::html;

/// The demo app's client id (created by `keycard demo`).
pub const DEMO_CLIENT: &str = "demo-app";
/// The demo API (created by `keycard demo`).
pub const DEMO_API: &str = "https://api.example.com";

pub fn demo_redirect_uri(issuer: &str) -> String {
    format!("{issuer}/demo/callback")
}

pub(crate) async fn demo_get<S: Store>(State(app): State<Arc<App<S>>>, jar: CookieJar) -> Response {
    let verifier = CodeVerifier::from_random(&random_bytes::<32>());
    let challenge = CodeChallenge::s256(&verifier);
    let issuer = app.settings.issuer.as_str();
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", DEMO_CLIENT)
        .append_pair("redirect_uri", &demo_redirect_uri(issuer))
        .append_pair("scope", "openid profile email offline_access photos:read")
        .append_pair("audience", DEMO_API)
        .append_pair("state", &new_id::<OAuthState>())
        .append_pair("nonce", &new_id::<Nonce>())
        .append_pair("code_challenge", challenge.as_str())
        .append_pair("code_challenge_method", "S256");
    let mut c = Cookie::new("keycard_demo_verifier", verifier.secret().to_owned());
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_path("/demo");
    let page = app.templates.render(
        "demo.html",
        json!({ "authorize_url": format!("/authorize?{}", q.finish()), "verifier": verifier.secret() }),
    );
    (jar.add(c), html(StatusCode::OK, page)).into_response()
}

pub(crate) async fn callback_get<S: Store>(
    State(app): State<Arc<App<S>>>,
    jar: CookieJar,
    RawQuery(q): RawQuery,
) -> Response {
    let p = Params::parse(q.unwrap_or_default().as_bytes()).unwrap_or_default();
    let issuer = app.settings.issuer.as_str();
    let page = app.templates.render(
        "demo.html",
        json!({
            "code": p.get("code"), "state": p.get("state"), "iss": p.get("iss"),
            "error": p.get("error"), "error_description": p.get("error_description"),
            "issuer": issuer, "client_id": DEMO_CLIENT, "redirect_uri": demo_redirect_uri(issuer),
            "verifier": jar.get("keycard_demo_verifier").map(|c| c.value().to_owned()).unwrap_or_else(|| "$CODE_VERIFIER".into()),
        }),
    );
    html(StatusCode::OK, page)
}
