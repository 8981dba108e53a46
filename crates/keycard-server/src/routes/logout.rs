//! The logout page: a CSRF-protected form that ends the browser's SSO session.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use keycard_os::new_secret;
use keycard_protocol::form::Params;
use keycard_protocol::{CsrfToken, SessionToken};
use keycard_store::Store;
use serde_json::json;

use crate::app::App;
use crate::http::html;
use crate::pages::txn::{csrf_cookie, same_origin};
use crate::pages::{CSRF_COOKIE, PageError, SESSION_COOKIE, cookie, respond};

pub(crate) async fn logout_get<S: Store>(
    State(app): State<Arc<App<S>>>,
    jar: CookieJar,
) -> Response {
    let (jar, csrf) = match csrf_cookie(&app, &jar) {
        Some(v) => (jar, v),
        None => {
            let v: CsrfToken = new_secret();
            (jar.add(cookie(&app, CSRF_COOKIE, v.secret().to_owned())), v)
        }
    };
    let page = app
        .templates
        .render("logout.html", json!({ "csrf": csrf.secret() }));
    (jar, html(StatusCode::OK, page)).into_response()
}

pub(crate) async fn logout_post<S: Store>(
    State(app): State<Arc<App<S>>>,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = async {
        let params = Params::parse(&body).unwrap_or_default();
        let form = params.get("csrf").and_then(|f| CsrfToken::parse(f).ok());
        let csrf_ok = match (csrf_cookie(&app, &jar), form) {
            (Some(c), Some(f)) => c.matches(&f),
            _ => false,
        };
        if !same_origin(&app, &headers) || !csrf_ok {
            return Err(PageError::FormExpired);
        }
        if let Some(token) = jar
            .get(&app.settings.cookie_name(SESSION_COOKIE))
            .and_then(|c| SessionToken::parse(c.value()).ok())
        {
            // Ends the session everywhere: its short grants, a `sid` event for the feed, and
            // the back-channel logouts of the clients that took part.
            app.store
                .end_session(&token.hash(), app.revocation())
                .await?;
        }
        let jar = jar.remove(cookie(&app, SESSION_COOKIE, String::new()));
        let page = app.templates.render(
            "message.html",
            json!({ "title": "Signed out", "message": "You are signed out of Keycard." }),
        );
        Ok((jar, html(StatusCode::OK, page)).into_response())
    };
    respond(&app, r.await)
}
