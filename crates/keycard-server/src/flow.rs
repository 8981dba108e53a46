//! The authorization flow behind the authorize, login and consent pages (RFC 6749 §4.1;
//! OIDC Core §3.1.2): after each step, [`proceed`] asks `keycard_protocol::authorize::decide`
//! what comes next and performs it — a login or consent page (creating the transaction on the
//! first step), a code (a new grant, RFC 6749 §4.1.2), or an error redirect.
//!
//! Also here: [`current_session`], the SSO session and its user as every page reads them.

use std::net::IpAddr;

use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use keycard_os::{new_id, new_secret};
use keycard_protocol::authorize::{self, AuthorizeRequest, Decision, SessionView};
use keycard_protocol::policy::Client;
use keycard_protocol::{AuthorizationCode, CsrfToken, SessionToken, TransactionId, wire};
use keycard_store::{AuthTxn, Code, Grant, Session, Store, StoreError, User};

use crate::app::App;
use crate::http::redirect_303;
use crate::pages::txn::{Txn, csrf_cookie};
use crate::pages::{CSRF_COOKIE, PageError, SESSION_COOKIE, cookie};

/// Reads the SSO session and its user; disabled or removed users have no session.
pub(crate) async fn current_session<S: Store>(
    app: &App<S>,
    jar: &CookieJar,
) -> Result<Option<(Session, User)>, StoreError> {
    let Some(token) = jar
        .get(&app.settings.cookie_name(SESSION_COOKIE))
        .and_then(|c| SessionToken::parse(c.value()).ok())
    else {
        return Ok(None);
    };
    let Some(s) = app.store.session(&token.hash(), app.now()).await? else {
        return Ok(None);
    };
    match app.store.user_by_id(&s.user_id).await? {
        Some(u) if !u.disabled => Ok(Some((s, u))),
        _ => Ok(None),
    }
}

/// Where an authorization request stands after one page.
#[derive(Debug)]
pub(crate) struct Step<'a> {
    pub(crate) client: &'a Client,
    pub(crate) req: AuthorizeRequest,
    /// The transaction, once one was started (the first page starts it).
    pub(crate) txn: Option<Txn>,
    pub(crate) session: Option<(Session, User)>,
    /// The user approved this very request.
    pub(crate) consented_now: bool,
}

/// Runs the decision and performs its step: a page, a code, or an error redirect.
pub(crate) async fn proceed<S: Store>(
    app: &App<S>,
    ip: IpAddr,
    jar: CookieJar,
    step: Step<'_>,
) -> Result<Response, PageError> {
    let Step {
        client,
        req,
        txn,
        session,
        consented_now,
    } = step;
    let consent = match &session {
        Some((s, _)) => {
            app.store
                .consent(&s.user_id, &req.client_id, req.audience.as_ref())
                .await?
        }
        None => None,
    };
    let authenticated_now = match (&txn, &session) {
        (Some(t), Some((s, _))) => t.stored.authenticated_user.as_ref() == Some(&s.user_id),
        _ => false,
    };
    let view = session.as_ref().map(|(s, _)| SessionView {
        auth_time: s.auth_time,
    });
    let decision = authorize::decide(
        &req,
        &authorize::Context {
            client,
            session: view,
            authenticated_now,
            consented_scope: consent.as_ref(),
            consented_now,
            now: app.now(),
        },
    );
    match decision {
        Decision::Login | Decision::Consent => {
            let page = if decision == Decision::Login {
                "/login"
            } else {
                "/consent"
            };
            let (jar, handle) = match txn {
                Some(t) => (jar, t.handle),
                None => {
                    if !app.may_start_txn(ip) {
                        return Err(PageError::TooManyRequests);
                    }
                    new_txn(app, jar, &req).await?
                }
            };
            let to = format!("{page}?txn={}", handle.secret());
            Ok((jar, redirect_303(&to)).into_response())
        }
        Decision::IssueCode => {
            let Some((s, _)) = session else {
                return Err(PageError::NotSignedIn);
            };
            if let Some(t) = &txn {
                app.store.delete_txn(&t.stored.id_hash).await?;
            }
            let to = issue_code(app, &req, &s).await?;
            Ok((jar, redirect_303(&to)).into_response())
        }
        Decision::Fail(error) => {
            if let Some(t) = &txn {
                app.store.delete_txn(&t.stored.id_hash).await?;
            }
            Err(PageError::RedirectToClient {
                redirect_uri: req.redirect_uri,
                state: req.state,
                error,
            })
        }
    }
}

/// Creates a transaction; reuses the browser's CSRF cookie so several tabs can sign in at once.
async fn new_txn<S: Store>(
    app: &App<S>,
    jar: CookieJar,
    req: &AuthorizeRequest,
) -> Result<(CookieJar, TransactionId), StoreError> {
    let csrf: CsrfToken = csrf_cookie(app, &jar)
        .filter(|c| c.secret().len() == 43)
        .unwrap_or_else(new_secret);
    let handle: TransactionId = new_secret();
    let t = AuthTxn {
        id_hash: handle.hash(),
        request: req.clone(),
        csrf_hash: csrf.hash(),
        authenticated_user: None,
        expires_at: app.now().plus(app.settings.txn_ttl_secs),
    };
    app.store.create_txn(&t).await?;
    let jar = jar.add(cookie(app, CSRF_COOKIE, csrf.secret().to_owned()));
    Ok((jar, handle))
}

/// Creates the grant and its single-use code (bound to client, redirect URI and challenge)
/// and returns the redirect that carries it.
async fn issue_code<S: Store>(
    app: &App<S>,
    req: &AuthorizeRequest,
    s: &Session,
) -> Result<String, StoreError> {
    let now = app.now();
    let code: AuthorizationCode = new_secret();
    let record = Code {
        hash: code.hash(),
        grant: Grant {
            id: new_id(),
            client_id: req.client_id.clone(),
            user_id: s.user_id.clone(),
            scope: req.scope.clone(),
            audience: req.audience.clone(),
            auth_time: s.auth_time,
            sid: Some(s.sid.clone()),
            nonce: req.nonce.clone(),
            created_at: now,
            expires_at: Some(now.plus(app.settings.grant_ttl_secs)),
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
        &code,
        req.state.as_ref(),
        &app.settings.issuer,
    ))
}
