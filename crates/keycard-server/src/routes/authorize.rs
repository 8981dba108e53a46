//! The authorization endpoint (RFC 6749 §4.1.1, §4.1.2.1; OIDC Core §3.1.2; RFC 9700 §4.11).
//!
//! Parse in two stages (`keycard_protocol::authorize`): the client and redirect URI first, whose
//! errors are shown on Keycard's page, then the rest, whose errors are redirected back to the
//! client. Then [`crate::flow::proceed`] decides: log in, consent, or issue the code.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum_extra::extract::CookieJar;
use keycard_protocol::authorize;
use keycard_protocol::form::Params;
use keycard_protocol::policy;
use keycard_protocol::{Audience, OAuthError};
use keycard_store::Store;

use crate::app::App;
use crate::flow::{Step, current_session, proceed};
use crate::http::{ClientIp, is_form};
use crate::pages::{PageError, respond};

pub(crate) async fn authorize_get<S: Store>(
    State(app): State<Arc<App<S>>>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    RawQuery(q): RawQuery,
) -> Response {
    let r = match Params::parse_keep_first(q.unwrap_or_default().as_bytes()) {
        Ok((p, repeated)) => authorize(&app, ip, jar, p, repeated).await,
        Err(e) => Err(PageError::Invalid(e)),
    };
    respond(&app, r)
}

/// OIDC Core §3.1.2.1: the authorization endpoint also accepts form posts.
pub(crate) async fn authorize_post<S: Store>(
    State(app): State<Arc<App<S>>>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let r = if is_form(&headers) {
        let params = Params::parse(&body)
            .and_then(|b| b.merge(Params::parse(q.unwrap_or_default().as_bytes())?));
        match params {
            Ok(p) => authorize(&app, ip, jar, p, Vec::new()).await,
            Err(e) => Err(PageError::Invalid(e)),
        }
    } else {
        Err(PageError::Invalid(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        )))
    };
    respond(&app, r)
}

async fn authorize<S: Store>(
    app: &App<S>,
    ip: IpAddr,
    jar: CookieJar,
    params: Params,
    repeated: Vec<String>,
) -> Result<Response, PageError> {
    let client_id = authorize::parse_client(&params, &repeated)?;
    let client = app
        .client(&client_id)
        .await?
        .ok_or_else(|| PageError::Invalid(OAuthError::invalid_request("unknown client_id")))?;
    // The target API is loaded before the pure parse, which then sees it as a plain value.
    let target = policy::target(params.get("resource"), params.get("audience"))
        .ok()
        .flatten();
    let api = app.api(target.as_ref()).await?;
    let lookup = move |id: &Audience| api.as_deref().filter(|a| &a.identifier == id).cloned();
    let req = authorize::parse_request(&params, &repeated, &client, &lookup)?;
    let session = current_session(app, &jar).await?;
    let step = Step {
        client: &client,
        req,
        txn: None,
        session,
        consented_now: false,
    };
    proceed(app, ip, jar, step).await
}
