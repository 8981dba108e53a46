//! `POST {prefix}/logout`: signs out here and at the provider (RFC 7009 §2; OpenID Connect
//! RP-Initiated Logout 1.0 §2, §3).
//!
//! CSRF: the request carries the anti-CSRF header (a script) or the session's form token as
//! `csrf_token` (a plain HTML form), and never `Sec-Fetch-Site: cross-site`. Then the session
//! is deleted, its refresh token revoked, and the browser sent to the provider's
//! `end_session_endpoint` with `id_token_hint`, `post_logout_redirect_uri`, `client_id` and a
//! fresh `state` when the provider advertises one, else to the post-logout URI. A form gets
//! that as a 303; a script gets `{"redirect_to": url}` (a `fetch` cannot follow a redirect to
//! another origin), and navigates there itself. Without a session there is nothing to do and
//! the browser goes to the post-logout URI.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, header};
use keycard_os::new_secret;
use keycard_protocol::form::Params;
use keycard_protocol::kind;
use serde_json::json;

use crate::app::Bff;
use crate::error::BffError;
use crate::session::Tokens;
use crate::web::{self, SameSite};

pub(crate) async fn logout_post(
    State(bff): State<Bff>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut resp = match logout(&bff, &headers, &body).await {
        Ok(resp) => resp,
        Err(e) => return e.into_response(),
    };
    resp.headers_mut().append(
        header::SET_COOKIE,
        web::clear_cookie(&bff.inner.settings.session_cookie, SameSite::Strict),
    );
    resp
}

async fn logout(bff: &Bff, headers: &HeaderMap, body: &[u8]) -> Result<Response, BffError> {
    let settings = &bff.inner.settings;
    web::refuse_cross_site(headers)?;
    let scripted = web::has_csrf_header(headers, &settings.csrf_header, &settings.csrf_value);
    let Some(session) = bff.current_session(headers).await? else {
        return Ok(answer(scripted, &settings.post_logout_redirect_uri));
    };
    if !scripted {
        let form = Params::parse(body).map_err(|_| BffError::Forbidden("malformed logout form"))?;
        let token = form.get("csrf_token").ok_or(BffError::Forbidden(
            "the anti-CSRF header or form token is missing",
        ))?;
        if !bff.inner.sealer.check_csrf(&session.id, token) {
            return Err(BffError::Forbidden("the logout form token is wrong"));
        }
    }
    let Some(session) = bff.inner.store.delete_session(&session.id).await? else {
        return Ok(answer(scripted, &settings.post_logout_redirect_uri));
    };
    let tokens = Tokens::open(bff, &session)?;
    if let Some(rt) = &tokens.refresh {
        bff.inner.provider.revoke(rt).await;
    }
    tracing::info!(sub = %session.sub, "signed out");
    let target = match (&bff.inner.provider.end_session_endpoint, &tokens.id) {
        (Some(end), Some(id_token)) => {
            let mut url = end.clone();
            url.query_pairs_mut()
                .append_pair("id_token_hint", id_token.secret())
                .append_pair(
                    "post_logout_redirect_uri",
                    &settings.post_logout_redirect_uri,
                )
                .append_pair("client_id", settings.client_id.as_str())
                .append_pair("state", new_secret::<kind::CsrfToken>().secret());
            url.to_string()
        }
        _ => settings.post_logout_redirect_uri.clone(),
    };
    Ok(answer(scripted, &target))
}

fn answer(scripted: bool, target: &str) -> Response {
    if scripted {
        super::no_store(Json(json!({"redirect_to": target})).into_response())
    } else {
        super::see_other(target)
    }
}
