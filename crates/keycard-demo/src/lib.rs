//! The demo web app of `keycard demo`: a small browser app built on `keycard-bff`, showing
//! every role of the seed's system at work (`shared/SEED-NOTES.md`: the front desk, the key
//! card, the doors, and the gateway's compromise between them).
//!
//! [`router`] serves, next to the BFF's own routes (which the caller merges in):
//! - `/`, one server-rendered page plus a little plain JavaScript (`page/`, no build step):
//!   sign in, the profile (id-token claims beside `/userinfo`), the access token decoded with
//!   each claim explained, buttons that call the low-risk and the high-risk API through the
//!   BFF's proxy and the gateway, refresh, revoke (then watch both APIs refuse), sign out;
//! - `GET /api/me`, the signed-in user's profile and token claims, as the BFF decoded them —
//!   the token itself never reaches the page's JavaScript;
//! - `POST /api/demo/refresh` and `POST /api/demo/revoke`, which refresh the session's tokens
//!   now and revoke its refresh token at the provider (RFC 7009; at Keycard that revokes the
//!   grant and every access token of it).
//!
//! Invariants: every answer is `Cache-Control: no-store`; the page's CSP allows only its own
//! script and style; the `/api/...` routes need the BFF's CSRF header (the `BffSession`
//! extractor checks it); nothing here holds a token beyond one request.
//!
//! Not here: the sign-in, session, logout and proxy routes (`keycard_bff`), starting the other
//! parts of the demo (the `keycard` CLI's `demo` command).

mod claims;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use keycard_bff::{BffError, BffSession};
use serde_json::{Value, json};

/// Where the other parts of the demo are, for the page's links.
#[derive(Clone, Debug)]
pub struct Links {
    /// The authorization server (its own pages: the account's sign-out page, discovery).
    pub issuer: String,
    /// The gateway in front of the demo API.
    pub gateway: String,
}

const INDEX: &str = include_str!("../page/index.html");
const APP_JS: &str = include_str!("../page/app.js");
const APP_CSS: &str = include_str!("../page/app.css");

/// The demo app's own routes; merge `Bff::router()` beside them and wrap both in
/// `Bff::layer()`.
pub fn router(links: Links) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/static/app.js", get(app_js))
        .route("/static/app.css", get(app_css))
        .route("/api/me", get(me))
        .route("/api/demo/refresh", post(refresh))
        .route("/api/demo/revoke", post(revoke))
        .with_state(links)
}

/// `&`, `<`, `>`, `"` and `'` as HTML entities: the links go into attributes and text.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(content_type: &'static str, body: String) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    r
}

async fn index(State(links): State<Links>) -> Response {
    let body = INDEX
        .replace("{{issuer}}", &escape(&links.issuer))
        .replace("{{gateway}}", &escape(&links.gateway));
    page("text/html; charset=utf-8", body)
}

async fn app_js() -> Response {
    page("text/javascript; charset=utf-8", APP_JS.to_owned())
}

async fn app_css() -> Response {
    page("text/css; charset=utf-8", APP_CSS.to_owned())
}

fn json_answer(status: StatusCode, v: &Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The profile and the token claims, decoded here so the token stays on the server.
async fn me(session: BffSession) -> Result<Response, BffError> {
    let access = session.access_token()?;
    let id_token = session.id_token()?;
    let userinfo = session.userinfo().await?;
    let (header, claims) = claims::decode(access.secret()).unwrap_or_default();
    let id_claims = id_token
        .as_ref()
        .and_then(|t| claims::decode(t.secret()))
        .map(|(_, c)| c);
    Ok(json_answer(
        StatusCode::OK,
        &json!({
            "sub": session.sub().as_str(),
            "name": session.name(),
            "session_expires_at": session.expires_at().secs(),
            "id_token": id_claims,
            "userinfo": userinfo,
            "access_token": {
                "header": header,
                "claims": claims::explained(&claims),
            },
        }),
    ))
}

async fn refresh(session: BffSession) -> Result<Response, BffError> {
    let expires_at = session.refresh_now().await?;
    Ok(json_answer(
        StatusCode::OK,
        &json!({ "refreshed": true, "access_expires_at": expires_at.secs() }),
    ))
}

async fn revoke(session: BffSession) -> Result<Response, BffError> {
    let revoked = session.revoke_refresh_token().await?;
    Ok(json_answer(StatusCode::OK, &json!({ "revoked": revoked })))
}

#[cfg(test)]
mod tests {
    #[test]
    fn links_are_escaped_for_html() {
        assert_eq!(
            super::escape(r#"http://x/"><script>'"#),
            "http://x/&quot;&gt;&lt;script&gt;&#39;"
        );
    }
}
