//! The authorization endpoint and its pages: login, consent, logout (RFC 6749 §4.1;
//! OIDC Core §3.1.2; RFC 9700 §4.11, §4.12, §4.16).
//!
//! A request that needs the user's input becomes a transaction (stored by hash) identified in
//! the page URL; every form carries that id plus a CSRF token that must equal the
//! `keycard_csrf` cookie and the hash stored with the transaction. After each step, [`proceed`]
//! asks `keycard_protocol::authorize::decide` what comes next.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use keycard_protocol::authorize::{self, AuthorizeError, AuthorizeRequest, Decision, SessionView};
use keycard_protocol::form::Params;
use keycard_protocol::policy::{self, Client};
use keycard_protocol::{ErrorCode, OAuthError, Secret, TokenHash, wire};
use keycard_store::{AuthTxn, Code, Grant, Session, Store, StoreError, User};
use serde_json::json;

use super::{ClientIp, html, is_form};
use crate::App;
use crate::crypto::{new_id, new_secret};

type Jar = CookieJar;

fn error_page<S: Store>(
    app: &App<S>,
    status: StatusCode,
    title: &str,
    message: &str,
    code: Option<&str>,
) -> Response {
    html(
        status,
        app.templates.render(
            "error.html",
            json!({ "title": title, "message": message, "code": code }),
        ),
    )
}

fn store_failure<S: Store>(app: &App<S>, e: StoreError) -> Response {
    tracing::error!(error = %e, "storage failure");
    error_page(
        app,
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "Please try again in a moment.",
        None,
    )
}

fn redirect_303(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn with_jar(jar: Jar, resp: Response) -> Response {
    (jar, resp).into_response()
}

fn cookie<S: Store>(app: &App<S>, name: &str, value: String) -> Cookie<'static> {
    let mut c = Cookie::new(app.settings.cookie_name(name), value);
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_path("/");
    c.set_secure(app.settings.issuer.is_https());
    c
}

fn error_redirect<S: Store>(app: &App<S>, req: &AuthorizeRequest, e: &OAuthError) -> Response {
    redirect_303(&wire::authorize_error_redirect(
        &req.redirect_uri,
        e,
        req.state.as_deref(),
        app.settings.issuer.as_str(),
    ))
}

/// Maps an authorize error to its channel: our page, or a redirect to the client.
fn authorize_error<S: Store>(app: &App<S>, e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::ShowToUser(e) => error_page(
            app,
            StatusCode::BAD_REQUEST,
            "This sign-in request is invalid",
            e.description
                .as_deref()
                .unwrap_or("The request is invalid."),
            Some(e.code.as_str()),
        ),
        AuthorizeError::RedirectToClient {
            redirect_uri,
            state,
            error,
        } => redirect_303(&wire::authorize_error_redirect(
            &redirect_uri,
            &error,
            state.as_deref(),
            app.settings.issuer.as_str(),
        )),
    }
}

/// Reads the SSO session and its user; disabled or removed users have no session.
async fn current_session<S: Store>(
    app: &App<S>,
    jar: &Jar,
) -> Result<Option<(Session, User)>, StoreError> {
    let Some(c) = jar.get(&app.settings.cookie_name("keycard_session")) else {
        return Ok(None);
    };
    let Some(s) = app
        .store
        .session(&TokenHash::of(c.value()), app.now())
        .await?
    else {
        return Ok(None);
    };
    match app.store.user_by_id(&s.user_id).await? {
        Some(u) if !u.disabled => Ok(Some((s, u))),
        _ => Ok(None),
    }
}

pub async fn authorize_get<S: Store>(
    State(app): State<Arc<App<S>>>,
    jar: Jar,
    RawQuery(q): RawQuery,
) -> Response {
    match Params::parse(q.unwrap_or_default().as_bytes()) {
        Ok(p) => authorize(&app, jar, p).await,
        Err(e) => authorize_error(&app, AuthorizeError::ShowToUser(e)),
    }
}

/// OIDC Core §3.1.2.1: the authorization endpoint also accepts form posts.
pub async fn authorize_post<S: Store>(
    State(app): State<Arc<App<S>>>,
    jar: Jar,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    if !is_form(&headers) {
        let e = OAuthError::invalid_request("the body must be application/x-www-form-urlencoded");
        return authorize_error(&app, AuthorizeError::ShowToUser(e));
    }
    let params = Params::parse(&body)
        .and_then(|b| b.merge(Params::parse(q.unwrap_or_default().as_bytes())?));
    match params {
        Ok(p) => authorize(&app, jar, p).await,
        Err(e) => authorize_error(&app, AuthorizeError::ShowToUser(e)),
    }
}

async fn authorize<S: Store>(app: &App<S>, jar: Jar, params: Params) -> Response {
    let client_id = match authorize::parse_client(&params) {
        Ok(c) => c,
        Err(e) => return authorize_error(app, e),
    };
    let client = match app.client(client_id.as_str()).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            let e = OAuthError::invalid_request("unknown client_id");
            return authorize_error(app, AuthorizeError::ShowToUser(e));
        }
        Err(e) => return store_failure(app, e),
    };
    // The target API is loaded before the pure parse, which then sees it as a plain value.
    let target = policy::target(params.get("resource"), params.get("audience"))
        .ok()
        .flatten();
    let api = match app.api(target).await {
        Ok(a) => a,
        Err(e) => return store_failure(app, e),
    };
    let lookup = move |id: &str| api.as_deref().filter(|a| a.identifier == id).cloned();
    let req = match authorize::parse_request(&params, &client, &lookup) {
        Ok(r) => r,
        Err(e) => return authorize_error(app, e),
    };
    let session = match current_session(app, &jar).await {
        Ok(s) => s,
        Err(e) => return store_failure(app, e),
    };
    proceed(app, jar, &client, req, None, session, false).await
}

/// A transaction in flight: its raw id (for URLs) and its stored state.
struct Txn {
    raw: String,
    stored: AuthTxn,
}

/// Runs the decision and performs its step: a page, a code, or an error redirect.
async fn proceed<S: Store>(
    app: &App<S>,
    jar: Jar,
    client: &Client,
    req: AuthorizeRequest,
    txn: Option<Txn>,
    session: Option<(Session, User)>,
    consented_now: bool,
) -> Response {
    let consent = match &session {
        Some((s, _)) => match app.store.consent(&s.user_id, &req.client_id).await {
            Ok(c) => c,
            Err(e) => return store_failure(app, e),
        },
        None => None,
    };
    let authenticated_now = match (&txn, &session) {
        (Some(t), Some((s, _))) => {
            t.stored.authenticated_user.as_deref() == Some(s.user_id.as_str())
        }
        _ => false,
    };
    let view = session.as_ref().map(|(s, _)| SessionView {
        auth_time: s.auth_time,
    });
    let decision = authorize::decide(
        &req,
        view,
        authenticated_now,
        consent.as_ref(),
        client.first_party,
        consented_now,
        app.now(),
    );
    match decision {
        Decision::Login | Decision::Consent => {
            let page = if decision == Decision::Login {
                "/login"
            } else {
                "/consent"
            };
            let (jar, raw) = match txn {
                Some(t) => (jar, t.raw),
                None => match new_txn(app, jar, &req).await {
                    Ok(x) => x,
                    Err(e) => return store_failure(app, e),
                },
            };
            with_jar(jar, redirect_303(&format!("{page}?txn={raw}")))
        }
        Decision::IssueCode => {
            let Some((s, _)) = session else {
                return error_page(
                    app,
                    StatusCode::BAD_REQUEST,
                    "Not signed in",
                    "Please sign in again.",
                    None,
                );
            };
            if let Some(t) = &txn
                && let Err(e) = app.store.delete_txn(&t.stored.id_hash).await
            {
                return store_failure(app, e);
            }
            match issue_code(app, &req, &s).await {
                Ok(to) => with_jar(jar, redirect_303(&to)),
                Err(e) => store_failure(app, e),
            }
        }
        Decision::Fail(e) => {
            if let Some(t) = &txn
                && let Err(e) = app.store.delete_txn(&t.stored.id_hash).await
            {
                return store_failure(app, e);
            }
            error_redirect(app, &req, &e)
        }
    }
}

/// Creates a transaction; reuses the browser's CSRF cookie so several tabs can sign in at once.
async fn new_txn<S: Store>(
    app: &App<S>,
    jar: Jar,
    req: &AuthorizeRequest,
) -> Result<(Jar, String), StoreError> {
    let csrf_name = app.settings.cookie_name("keycard_csrf");
    let csrf = match jar
        .get(&csrf_name)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 43)
    {
        Some(v) => v,
        None => new_secret().secret().to_owned(),
    };
    let raw = new_secret();
    let t = AuthTxn {
        id_hash: raw.hash(),
        request: req.clone(),
        csrf_hash: TokenHash::of(&csrf),
        authenticated_user: None,
        expires_at: app.now().plus(app.settings.txn_ttl_secs),
    };
    app.store.create_txn(&t).await?;
    let jar = jar.add(cookie(app, "keycard_csrf", csrf));
    Ok((jar, raw.secret().to_owned()))
}

async fn issue_code<S: Store>(
    app: &App<S>,
    req: &AuthorizeRequest,
    s: &Session,
) -> Result<String, StoreError> {
    let now = app.now();
    let code = new_secret();
    let record = Code {
        hash: code.hash(),
        grant: Grant {
            id: new_id(),
            client_id: req.client_id.clone(),
            user_id: s.user_id.clone(),
            scope: req.scope_set(),
            audience: req.audience.clone(),
            auth_time: s.auth_time,
            sid: Some(s.sid.clone()),
            nonce: req.nonce.clone(),
            created_at: now,
        },
        redirect_uri: req.redirect_uri.clone(),
        redirect_uri_sent: req.redirect_uri_sent,
        code_challenge: req.code_challenge.clone(),
        expires_at: now.plus(app.settings.code_ttl_secs),
        used: false,
    };
    app.store.issue_code(&record).await?;
    Ok(wire::authorize_code_redirect(
        &req.redirect_uri,
        code.secret(),
        req.state.as_deref(),
        app.settings.issuer.as_str(),
    ))
}

/// Rejects cross-site form posts (Fetch Metadata, then Origin), on top of the CSRF token.
fn same_origin<S: Store>(app: &App<S>, headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin" || site == "none";
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => url::Url::parse(app.settings.issuer.as_str())
            .map(|u| u.origin().ascii_serialization() == origin)
            .unwrap_or(false),
        // Non-browser clients send neither header; the CSRF token still applies.
        None => true,
    }
}

/// Loads the transaction named by `txn` and checks the double-submitted CSRF token.
async fn load_txn<S: Store>(
    app: &App<S>,
    jar: &Jar,
    params: &Params,
    check_csrf: bool,
) -> Result<Txn, Response> {
    let expired = || {
        error_page(
            app,
            StatusCode::BAD_REQUEST,
            "This sign-in link has expired",
            "Go back to the application and start again.",
            None,
        )
    };
    let Some(raw) = params.get("txn") else {
        return Err(expired());
    };
    let Ok(raw_secret) = Secret::parse(raw) else {
        return Err(expired());
    };
    let stored = match app.store.txn(&raw_secret.hash(), app.now()).await {
        Ok(Some(t)) => t,
        Ok(None) => return Err(expired()),
        Err(e) => return Err(store_failure(app, e)),
    };
    if check_csrf {
        let cookie = jar
            .get(&app.settings.cookie_name("keycard_csrf"))
            .map(|c| c.value().to_owned());
        let form = params.get("csrf");
        let ok = match (cookie, form) {
            (Some(c), Some(f)) => {
                TokenHash::of(&c).ct_eq(&TokenHash::of(f))
                    && TokenHash::of(f).ct_eq(&stored.csrf_hash)
            }
            _ => false,
        };
        if !ok {
            return Err(error_page(
                app,
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The security token did not match. Go back to the application and start again.",
                None,
            ));
        }
    }
    Ok(Txn {
        raw: raw.to_owned(),
        stored,
    })
}

async fn txn_client<S: Store>(app: &App<S>, t: &Txn) -> Result<Arc<Client>, Response> {
    match app.client(&t.stored.request.client_id).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(error_page(
            app,
            StatusCode::BAD_REQUEST,
            "Unknown application",
            "This application no longer exists.",
            None,
        )),
        Err(e) => Err(store_failure(app, e)),
    }
}

fn login_page<S: Store>(
    app: &App<S>,
    status: StatusCode,
    t: &Txn,
    client: &Client,
    jar: &Jar,
    username: &str,
    error: Option<&str>,
) -> Response {
    let csrf = jar
        .get(&app.settings.cookie_name("keycard_csrf"))
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    html(
        status,
        app.templates.render(
            "login.html",
            json!({ "client_name": client.name, "txn": t.raw, "csrf": csrf, "username": username, "error": error }),
        ),
    )
}

pub async fn login_get<S: Store>(
    State(app): State<Arc<App<S>>>,
    jar: Jar,
    RawQuery(q): RawQuery,
) -> Response {
    let params = Params::parse(q.unwrap_or_default().as_bytes()).unwrap_or_default();
    let t = match load_txn(&app, &jar, &params, false).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let client = match txn_client(&app, &t).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let hint = t.stored.request.login_hint.clone().unwrap_or_default();
    login_page(&app, StatusCode::OK, &t, &client, &jar, &hint, None)
}

const LOGIN_FAILED: &str = "Wrong username or password.";

/// The login form post: answers 303 on success (RFC 9700 §4.12), the page again on failure.
pub async fn login_post<S: Store>(
    State(app): State<Arc<App<S>>>,
    jar: Jar,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !same_origin(&app, &headers) {
        return error_page(
            &app,
            StatusCode::FORBIDDEN,
            "Cross-site request refused",
            "Sign in from this site's own page.",
            None,
        );
    }
    let Ok(params) = Params::parse(&body) else {
        return error_page(
            &app,
            StatusCode::BAD_REQUEST,
            "Invalid form",
            "The form could not be read.",
            None,
        );
    };
    let t = match load_txn(&app, &jar, &params, true).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let client = match txn_client(&app, &t).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let username = params
        .get("username")
        .unwrap_or("")
        .chars()
        .take(255)
        .collect::<String>();
    let password = params.get("password").unwrap_or("").to_owned();
    let now = app.now();
    let locked = match crate::throttle::retry_after(&app.store, &username, &ip, now).await {
        Ok(l) => l,
        Err(e) => return store_failure(&app, e),
    };
    if let Some(wait) = locked {
        crate::metrics::login_failed("throttled");
        let mut r = login_page(
            &app,
            StatusCode::TOO_MANY_REQUESTS,
            &t,
            &client,
            &jar,
            &username,
            Some("Too many attempts. Wait a moment and try again."),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let user = match app.store.user_by_username(&username).await {
        Ok(u) => u,
        Err(e) => return store_failure(&app, e),
    };
    // The hash is always checked (a dummy one for unknown users), so timing does not reveal
    // whether the account exists; disabled accounts fail with the same message.
    let ok = app
        .passwords
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await;
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        _ => {
            if let Err(e) = crate::throttle::record_failure(&app.store, &username, &ip, now).await {
                return store_failure(&app, e);
            }
            crate::metrics::login_failed("bad_credentials");
            tracing::info!("login failed");
            return login_page(
                &app,
                StatusCode::UNAUTHORIZED,
                &t,
                &client,
                &jar,
                &username,
                Some(LOGIN_FAILED),
            );
        }
    };
    if let Err(e) = crate::throttle::record_success(&app.store, &username).await {
        return store_failure(&app, e);
    }
    let raw = new_secret();
    let session = Session {
        id_hash: raw.hash(),
        user_id: user.id.clone(),
        auth_time: now,
        sid: new_id(),
        expires_at: now.plus(app.settings.session_ttl_secs),
    };
    if let Err(e) = app.store.create_session(&session).await {
        return store_failure(&app, e);
    }
    // A new session id on every login (session fixation); the old one, if any, is dropped.
    if let Some(old) = jar.get(&app.settings.cookie_name("keycard_session"))
        && let Err(e) = app.store.delete_session(&TokenHash::of(old.value())).await
    {
        return store_failure(&app, e);
    }
    if let Err(e) = app
        .store
        .set_txn_authenticated(&t.stored.id_hash, &user.id)
        .await
    {
        return store_failure(&app, e);
    }
    tracing::info!(user = %user.id, "login succeeded");
    let jar = jar.add(cookie(&app, "keycard_session", raw.secret().to_owned()));
    let mut t = t;
    t.stored.authenticated_user = Some(user.id.clone());
    let req = t.stored.request.clone();
    proceed(
        &app,
        jar,
        &client,
        req,
        Some(t),
        Some((session, user)),
        false,
    )
    .await
}

fn describe(scope: &str) -> &'static str {
    match scope {
        "openid" => "Sign you in with your Keycard identity",
        "profile" => "Your name and picture",
        "email" => "Your email address",
        "offline_access" => "Stay signed in (refresh tokens)",
        _ => "",
    }
}

pub async fn consent_get<S: Store>(
    State(app): State<Arc<App<S>>>,
    jar: Jar,
    RawQuery(q): RawQuery,
) -> Response {
    let params = Params::parse(q.unwrap_or_default().as_bytes()).unwrap_or_default();
    let t = match load_txn(&app, &jar, &params, false).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let client = match txn_client(&app, &t).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let user = match current_session(&app, &jar).await {
        Ok(Some((_, u))) => u,
        Ok(None) => return redirect_303(&format!("/login?txn={}", t.raw)),
        Err(e) => return store_failure(&app, e),
    };
    let scopes: Vec<_> = t
        .stored
        .request
        .scope_set()
        .iter()
        .map(|s| json!({ "name": s.as_str(), "description": describe(s.as_str()) }))
        .collect();
    let csrf = jar
        .get(&app.settings.cookie_name("keycard_csrf"))
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    html(
        StatusCode::OK,
        app.templates.render(
            "consent.html",
            json!({
                "client_name": client.name, "username": user.username, "scopes": scopes,
                "audience": t.stored.request.audience, "txn": t.raw, "csrf": csrf,
            }),
        ),
    )
}

pub async fn consent_post<S: Store>(
    State(app): State<Arc<App<S>>>,
    jar: Jar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !same_origin(&app, &headers) {
        return error_page(
            &app,
            StatusCode::FORBIDDEN,
            "Cross-site request refused",
            "Approve from this site's own page.",
            None,
        );
    }
    let Ok(params) = Params::parse(&body) else {
        return error_page(
            &app,
            StatusCode::BAD_REQUEST,
            "Invalid form",
            "The form could not be read.",
            None,
        );
    };
    let t = match load_txn(&app, &jar, &params, true).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let client = match txn_client(&app, &t).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let session = match current_session(&app, &jar).await {
        Ok(Some(s)) => s,
        Ok(None) => return redirect_303(&format!("/login?txn={}", t.raw)),
        Err(e) => return store_failure(&app, e),
    };
    let req = t.stored.request.clone();
    if params.get("decision") != Some("approve") {
        if let Err(e) = app.store.delete_txn(&t.stored.id_hash).await {
            return store_failure(&app, e);
        }
        return error_redirect(
            &app,
            &req,
            &OAuthError::new(ErrorCode::AccessDenied, "the user denied the request"),
        );
    }
    let previous = match app
        .store
        .consent(&session.0.user_id, &client.id.to_string())
        .await
    {
        Ok(p) => p.unwrap_or_default(),
        Err(e) => return store_failure(&app, e),
    };
    if let Err(e) = app
        .store
        .record_consent(
            &session.0.user_id,
            client.id.as_str(),
            &previous.union(&req.scope_set()),
        )
        .await
    {
        return store_failure(&app, e);
    }
    proceed(&app, jar, &client, req, Some(t), Some(session), true).await
}

pub async fn logout_get<S: Store>(State(app): State<Arc<App<S>>>, jar: Jar) -> Response {
    let name = app.settings.cookie_name("keycard_csrf");
    let (jar, csrf) = match jar.get(&name).map(|c| c.value().to_owned()) {
        Some(v) => (jar, v),
        None => {
            let v = new_secret().secret().to_owned();
            (jar.add(cookie(&app, "keycard_csrf", v.clone())), v)
        }
    };
    with_jar(
        jar,
        html(
            StatusCode::OK,
            app.templates.render("logout.html", json!({ "csrf": csrf })),
        ),
    )
}

pub async fn logout_post<S: Store>(
    State(app): State<Arc<App<S>>>,
    jar: Jar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::parse(&body).unwrap_or_default();
    let cookie_csrf = jar
        .get(&app.settings.cookie_name("keycard_csrf"))
        .map(|c| c.value().to_owned());
    let csrf_ok = match (cookie_csrf, params.get("csrf")) {
        (Some(c), Some(f)) => TokenHash::of(&c).ct_eq(&TokenHash::of(f)),
        _ => false,
    };
    if !same_origin(&app, &headers) || !csrf_ok {
        return error_page(
            &app,
            StatusCode::FORBIDDEN,
            "Sign-out refused",
            "Use the sign-out button on this site.",
            None,
        );
    }
    let name = app.settings.cookie_name("keycard_session");
    if let Some(c) = jar.get(&name)
        && let Err(e) = app.store.delete_session(&TokenHash::of(c.value())).await
    {
        return store_failure(&app, e);
    }
    let jar = jar.remove(cookie(&app, "keycard_session", String::new()));
    with_jar(
        jar,
        html(
            StatusCode::OK,
            app.templates.render(
                "message.html",
                json!({ "title": "Signed out", "message": "You are signed out of Keycard." }),
            ),
        ),
    )
}
