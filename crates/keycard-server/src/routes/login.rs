//! The login page (OIDC Core §3.1.2.3): the password form of a transaction, throttled per
//! account and address before any hashing (ASVS 6.3.1; `pages::signin`), answered with 303 on
//! success (RFC 9700 §4.12) and the page again on failure.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::CookieJar;
use keycard_protocol::form::Params;
use keycard_protocol::policy::Client;
use keycard_store::Store;
use serde_json::json;

use crate::app::App;
use crate::flow::{Step, proceed};
use crate::http::{ClientIp, html, retry_after};
use crate::pages::signin::{self, SignIn};
use crate::pages::txn::{self, Txn, TxnForm, csrf_cookie};
use crate::pages::{PageError, respond};

fn login_page<S: Store>(
    app: &App<S>,
    status: StatusCode,
    t: &Txn,
    client: &Client,
    jar: &CookieJar,
    username: &str,
    error: Option<&str>,
) -> Response {
    let csrf = csrf_cookie(app, jar)
        .map(|c| c.secret().to_owned())
        .unwrap_or_default();
    html(
        status,
        app.templates.render(
            "login.html",
            json!({
                "client_name": client.name, "txn": t.handle.secret(), "csrf": csrf,
                "username": username, "error": error,
            }),
        ),
    )
}

pub(crate) async fn login_get<S: Store>(
    State(app): State<Arc<App<S>>>,
    jar: CookieJar,
    RawQuery(q): RawQuery,
) -> Response {
    let r = async {
        let params = Params::parse(q.unwrap_or_default().as_bytes()).unwrap_or_default();
        let t = txn::load(&app, &jar, &params, false).await?;
        let client = txn::client(&app, &t).await?;
        let hint = t.stored.request.login_hint.as_deref().unwrap_or_default();
        Ok(login_page(
            &app,
            StatusCode::OK,
            &t,
            &client,
            &jar,
            hint,
            None,
        ))
    };
    respond(&app, r.await)
}

pub(crate) async fn login_post<S: Store>(
    State(app): State<Arc<App<S>>>,
    ClientIp(ip): ClientIp,
    // A refused form is answered by the extractor with its page already rendered.
    form: TxnForm,
) -> Response {
    respond(&app, login(&app, ip, form).await)
}

async fn login<S: Store>(
    app: &App<S>,
    ip: std::net::IpAddr,
    form: TxnForm,
) -> Result<Response, PageError> {
    let TxnForm {
        jar,
        params,
        txn: mut t,
        client,
    } = form;
    let typed: String = params
        .get("username")
        .unwrap_or("")
        .chars()
        .take(255)
        .collect();
    let password = params.get("password").unwrap_or("").to_owned();
    let (jar, session, user) = match signin::password(app, ip, &jar, &typed, password).await? {
        SignIn::Throttled(wait) => {
            let page = login_page(
                app,
                StatusCode::TOO_MANY_REQUESTS,
                &t,
                &client,
                &jar,
                &typed,
                Some(signin::THROTTLED),
            );
            return Ok(retry_after(page, wait));
        }
        SignIn::Failed => {
            return Ok(login_page(
                app,
                StatusCode::UNAUTHORIZED,
                &t,
                &client,
                &jar,
                &typed,
                Some(signin::FAILED),
            ));
        }
        SignIn::SignedIn(n) => (n.jar, n.session, n.user),
    };
    app.store
        .set_txn_authenticated(&t.stored.id_hash, &user.id)
        .await?;
    t.stored.authenticated_user = Some(user.id.clone());
    let req = t.stored.request.clone();
    let step = Step {
        client: &client,
        req,
        txn: Some(t),
        session: Some((session, user)),
        consented_now: false,
    };
    proceed(app, ip, jar, step).await
}
