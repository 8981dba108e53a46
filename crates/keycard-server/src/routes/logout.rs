//! Logout (OIDC RP-Initiated Logout 1.0): the `end_session_endpoint`, also the page a user
//! signs out on.
//!
//! With a valid `id_token_hint` (an id token we signed, expired or not, for the user of this
//! session or for a session that is already gone) the session ends at once and the browser
//! goes back to `post_logout_redirect_uri` — only when it exactly matches one registered for
//! the hint's client (and `client_id`, if sent, is that client) — with `state`. Without proof
//! of the client there is never a redirect: the user confirms on our page (CSRF-protected),
//! and ends on our "signed out" page. Ending a session revokes its short grants, tells the
//! revocation feed (`sid`) and queues back-channel logouts for the clients that took part
//! (`Store::end_session`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use keycard_protocol::form::Params;
use keycard_protocol::policy::Client;
use keycard_protocol::redirect::RedirectUri;
use keycard_protocol::{ClientId, OAuthError, SessionToken};
use keycard_store::Store;
use serde_json::json;

use crate::app::App;
use crate::flow::current_session;
use crate::http::{html, is_form, redirect_303};
use crate::pages::txn::{checked_csrf, csrf_or_new};
use crate::pages::{PageError, SESSION_COOKIE, cookie, respond};

pub(crate) async fn logout_get<S: Store>(
    State(app): State<Arc<App<S>>>,
    jar: CookieJar,
    RawQuery(q): RawQuery,
) -> Response {
    let r = match Params::parse(q.unwrap_or_default().as_bytes()) {
        Ok(p) => end_session(&app, jar, &p).await,
        Err(e) => Err(PageError::Invalid(e)),
    };
    respond(&app, r)
}

/// The confirmation form posts `csrf`; an RP may also post its logout request (§2: GET and
/// POST are both supported).
pub(crate) async fn logout_post<S: Store>(
    State(app): State<Arc<App<S>>>,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = if is_form(&headers) {
        Params::parse(&body)
    } else {
        Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ))
    };
    let r = match params {
        Ok(p) if p.contains("csrf") => confirmed(&app, jar, &headers, &p).await,
        Ok(p) => end_session(&app, jar, &p).await,
        Err(e) => Err(PageError::Invalid(e)),
    };
    respond(&app, r)
}

/// Where to send the browser after a logout proven to come from a client, if anywhere.
struct Return {
    to: RedirectUri,
    state: Option<keycard_protocol::State>,
}

async fn end_session<S: Store>(
    app: &App<S>,
    jar: CookieJar,
    p: &Params,
) -> Result<Response, PageError> {
    let Some(hint) = p.get("id_token_hint") else {
        // Without proof of the client: the user confirms, and no redirect follows.
        let client = match p.get("client_id").and_then(|c| ClientId::parse(c).ok()) {
            Some(id) => app.client(&id).await?,
            None => None,
        };
        return Ok(confirmation(app, jar, client.as_deref()));
    };
    let hint = app
        .keys
        .current()
        .verifier
        .verify_id_token_hint(hint)
        .map_err(|_| PageError::Invalid(OAuthError::invalid_request("id_token_hint is invalid")))?;
    let [aud] = hint.aud.as_slice() else {
        return Err(PageError::Invalid(OAuthError::invalid_request(
            "id_token_hint names more than one client",
        )));
    };
    let client_id = ClientId::parse(aud.as_str()).map_err(PageError::Invalid)?;
    if p.get("client_id").is_some_and(|c| c != client_id.as_str()) {
        return Err(PageError::Invalid(OAuthError::invalid_request(
            "client_id is not the client of the id_token_hint",
        )));
    }
    let client = app
        .client(&client_id)
        .await?
        .ok_or(PageError::UnknownClient)?;
    let back = match p.get("post_logout_redirect_uri") {
        Some(uri) => Some(Return {
            to: registered_return(&client, uri)?,
            state: p
                .get("state")
                .map(keycard_protocol::State::parse)
                .transpose()
                .map_err(PageError::Invalid)?,
        }),
        None => None,
    };
    let session = current_session(app, &jar).await?;
    // A hint for somebody else is no reason to end this browser's session unasked.
    if let Some((s, _)) = &session
        && !hint.sub.is_client(&client_id)
        && s.user_id.as_str() != hint.sub.as_str()
    {
        return Ok(confirmation(app, jar, Some(&client)));
    }
    let jar = end_current(app, jar).await?;
    Ok(match back {
        Some(b) => (jar, redirect_303(&return_url(&b))).into_response(),
        None => (jar, signed_out(app)).into_response(),
    })
}

/// The post-logout URI, if it is exactly one the client registered (§3: never another).
fn registered_return(client: &Client, uri: &str) -> Result<RedirectUri, PageError> {
    client
        .post_logout_redirect_uris
        .iter()
        .find(|r| r.as_str() == uri)
        .cloned()
        .ok_or_else(|| {
            PageError::Invalid(OAuthError::invalid_request(
                "post_logout_redirect_uri is not registered for this client",
            ))
        })
}

fn return_url(b: &Return) -> String {
    let mut url = b.to.as_str().to_owned();
    if let Some(state) = &b.state {
        let sep = if url.contains('?') { '&' } else { '?' };
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("state", state.as_str())
            .finish();
        url.push(sep);
        url.push_str(&q);
    }
    url
}

async fn confirmed<S: Store>(
    app: &App<S>,
    jar: CookieJar,
    headers: &HeaderMap,
    p: &Params,
) -> Result<Response, PageError> {
    // A cross-site post is refused as an expired form, as it always was here.
    checked_csrf(app, &jar, headers, p).map_err(|_| PageError::FormExpired)?;
    let jar = end_current(app, jar).await?;
    Ok((jar, signed_out(app)).into_response())
}

/// Ends this browser's session, if it has one, and drops its cookie.
async fn end_current<S: Store>(app: &App<S>, jar: CookieJar) -> Result<CookieJar, PageError> {
    if let Some(token) = jar
        .get(&app.settings.cookie_name(SESSION_COOKIE))
        .and_then(|c| SessionToken::parse(c.value()).ok())
    {
        app.revoking(app.store.end_session(&token.hash(), app.revocation()))
            .await?;
    }
    Ok(jar.remove(cookie(app, SESSION_COOKIE, String::new())))
}

fn confirmation<S: Store>(app: &App<S>, jar: CookieJar, client: Option<&Client>) -> Response {
    let (jar, csrf) = csrf_or_new(app, jar);
    let page = app.templates.render(
        "logout.html",
        json!({ "csrf": csrf.secret(), "client_name": client.map(|c| c.name.as_str()) }),
    );
    (jar, html(StatusCode::OK, page)).into_response()
}

fn signed_out<S: Store>(app: &App<S>) -> Response {
    let page = app.templates.render(
        "message.html",
        json!({ "title": "Signed out", "message": "You are signed out of Keycard." }),
    );
    html(StatusCode::OK, page)
}
