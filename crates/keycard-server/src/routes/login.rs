//! The login page (OIDC Core §3.1.2.3): the password form of a transaction, throttled per
//! account and address before any hashing (ASVS 6.3.1), answered with 303 on success (RFC 9700
//! §4.12) and the page again on failure.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum_extra::extract::CookieJar;
use keycard_os::{new_id, new_secret};
use keycard_protocol::form::Params;
use keycard_protocol::policy::Client;
use keycard_protocol::{SessionToken, Username};
use keycard_store::{Session, Store};
use serde_json::json;

use crate::app::App;
use crate::flow::{Step, proceed};
use crate::http::{ClientIp, html};
use crate::pages::txn::{self, Txn, TxnForm, csrf_cookie};
use crate::pages::{PageError, SESSION_COOKIE, cookie, respond};

const LOGIN_FAILED: &str = "Wrong username or password.";

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
    let now = app.now();
    let username = Username::parse(&typed).ok();
    // Reserved (and counted as a failure) before the hash: parallel guesses cannot walk past
    // the limit, and a locked attempt costs no argon2 work.
    if let Some(wait) = crate::throttle::reserve(&app.store, &typed, &ip, now).await? {
        crate::metrics::login_failed("throttled");
        let mut r = login_page(
            app,
            StatusCode::TOO_MANY_REQUESTS,
            &t,
            &client,
            &jar,
            &typed,
            Some("Too many attempts. Wait a moment and try again."),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(r);
    }
    let user = match &username {
        Some(u) => app.store.user_by_username(u).await?,
        None => None,
    };
    // The hash is always checked (a dummy one for unknown users), so timing does not reveal
    // whether the account exists; disabled accounts fail with the same message.
    let ok = app
        .passwords
        .verify(
            password,
            user.as_ref().map(|u| u.password_hash.as_phc().to_owned()),
        )
        .await;
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        _ => {
            crate::metrics::login_failed("bad_credentials");
            tracing::info!("login failed");
            return Ok(login_page(
                app,
                StatusCode::UNAUTHORIZED,
                &t,
                &client,
                &jar,
                &typed,
                Some(LOGIN_FAILED),
            ));
        }
    };
    crate::throttle::succeeded(&app.store, &typed, &ip).await?;
    let raw: SessionToken = new_secret();
    let session = Session {
        id_hash: raw.hash(),
        user_id: user.id.clone(),
        auth_time: now,
        sid: new_id(),
        expires_at: now.plus(app.settings.session_ttl_secs),
    };
    app.store.create_session(&session).await?;
    // A new session id on every login (session fixation); the old one, if any, is dropped.
    if let Some(old) = jar
        .get(&app.settings.cookie_name(SESSION_COOKIE))
        .and_then(|c| SessionToken::parse(c.value()).ok())
    {
        app.store.delete_session(&old.hash()).await?;
    }
    app.store
        .set_txn_authenticated(&t.stored.id_hash, &user.id)
        .await?;
    tracing::info!(user = %user.id, "login succeeded");
    let jar = jar.add(cookie(app, SESSION_COOKIE, raw.secret().to_owned()));
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
