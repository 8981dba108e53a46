//! The consent page (RFC 6749 §4.1.1; OAuth 2.1 §7.3): the user approves the scopes a client
//! asked for; approval is remembered per user and client.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::CookieJar;
use keycard_protocol::form::Params;
use keycard_protocol::{ErrorCode, OAuthError};
use keycard_store::Store;
use serde_json::json;

use crate::app::App;
use crate::flow::{Step, current_session, proceed};
use crate::http::{ClientIp, html, redirect_303};
use crate::pages::txn::{self, TxnForm, csrf_cookie};
use crate::pages::{PageError, respond, scope_list};

pub(crate) async fn consent_get<S: Store>(
    State(app): State<Arc<App<S>>>,
    jar: CookieJar,
    RawQuery(q): RawQuery,
) -> Response {
    let r = async {
        let params = Params::parse(q.unwrap_or_default().as_bytes()).unwrap_or_default();
        let t = txn::load(&app, &jar, &params, false).await?;
        let client = txn::client(&app, &t).await?;
        let Some((_, user)) = current_session(&app, &jar).await? else {
            return Ok(redirect_303(&format!("/login?txn={}", t.handle.secret())));
        };
        let scopes = scope_list(&t.stored.request.scope);
        let csrf = csrf_cookie(&app, &jar)
            .map(|c| c.secret().to_owned())
            .unwrap_or_default();
        Ok(html(
            StatusCode::OK,
            app.templates.render(
                "consent.html",
                json!({
                    "client_name": client.name, "username": user.username, "scopes": scopes,
                    "audience": t.stored.request.audience, "txn": t.handle.secret(), "csrf": csrf,
                }),
            ),
        ))
    };
    respond(&app, r.await)
}

pub(crate) async fn consent_post<S: Store>(
    State(app): State<Arc<App<S>>>,
    ClientIp(ip): ClientIp,
    // A refused form is answered by the extractor with its page already rendered.
    form: TxnForm,
) -> Response {
    respond(&app, consent(&app, ip, form).await)
}

async fn consent<S: Store>(
    app: &App<S>,
    ip: std::net::IpAddr,
    form: TxnForm,
) -> Result<Response, PageError> {
    let TxnForm {
        jar,
        params,
        txn: t,
        client,
    } = form;
    let Some(session) = current_session(app, &jar).await? else {
        return Ok(redirect_303(&format!("/login?txn={}", t.handle.secret())));
    };
    let req = t.stored.request.clone();
    if params.get("decision") != Some("approve") {
        app.store.delete_txn(&t.stored.id_hash).await?;
        return Err(PageError::RedirectToClient {
            redirect_uri: req.redirect_uri,
            state: req.state,
            error: OAuthError::new(ErrorCode::AccessDenied, "the user denied the request"),
        });
    }
    let audience = req.audience.as_ref();
    let previous = app
        .store
        .consent(&session.0.user_id, &client.id, audience)
        .await?
        .unwrap_or_default();
    app.store
        .record_consent(
            &session.0.user_id,
            &client.id,
            audience,
            &previous.union(&req.scope),
        )
        .await?;
    let step = Step {
        client: &client,
        req,
        txn: Some(t),
        session: Some(session),
        consented_now: true,
    };
    proceed(app, ip, jar, step).await
}
