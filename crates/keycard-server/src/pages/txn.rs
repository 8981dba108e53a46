//! Login/consent transactions as the pages see them: the handle in the page URL, the stored
//! request, and the double-submitted CSRF token (RFC 9700 §4.7; OWASP CSRF cheat sheet).
//!
//! [`load`] finds the transaction a page names; [`TxnForm`] is the extractor every form post
//! (login, consent) starts from: it refuses cross-site posts (Fetch Metadata, then Origin),
//! reads the form, loads the transaction, checks the CSRF token against the cookie and the
//! stored hash in constant time, and loads the transaction's client.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum_extra::extract::CookieJar;
use keycard_protocol::form::Params;
use keycard_protocol::policy::Client;
use keycard_protocol::{CsrfToken, TransactionId};
use keycard_store::{AuthTxn, Store};

use keycard_os::new_secret;

use super::{CSRF_COOKIE, PageError, cookie};
use crate::app::App;

/// A transaction in flight: its handle (for page URLs) and its stored state.
#[derive(Debug)]
pub(crate) struct Txn {
    pub(crate) handle: TransactionId,
    pub(crate) stored: AuthTxn,
}

/// The CSRF token of this browser, if its cookie holds one.
pub(crate) fn csrf_cookie<S: Store>(app: &App<S>, jar: &CookieJar) -> Option<CsrfToken> {
    jar.get(&app.settings.cookie_name(CSRF_COOKIE))
        .and_then(|c| CsrfToken::parse(c.value()).ok())
}

/// This browser's CSRF token, or a fresh one set as its cookie, for a form that is not tied to
/// a transaction (logout, the device page).
pub(crate) fn csrf_or_new<S: Store>(app: &App<S>, jar: CookieJar) -> (CookieJar, CsrfToken) {
    match csrf_cookie(app, &jar) {
        Some(v) => (jar, v),
        None => {
            let v: CsrfToken = new_secret();
            (jar.add(cookie(app, CSRF_COOKIE, v.secret().to_owned())), v)
        }
    }
}

/// Checks a form that is not tied to a transaction: posted from our own pages, with the
/// browser's CSRF cookie repeated in the `csrf` field. Returns the token.
pub(crate) fn checked_csrf<S: Store>(
    app: &App<S>,
    jar: &CookieJar,
    headers: &HeaderMap,
    params: &Params,
) -> Result<CsrfToken, PageError> {
    if !same_origin(app, headers) {
        return Err(PageError::CrossSite);
    }
    let form = params.get("csrf").and_then(|f| CsrfToken::parse(f).ok());
    match (csrf_cookie(app, jar), form) {
        (Some(c), Some(f)) if c.matches(&f) => Ok(c),
        _ => Err(PageError::FormExpired),
    }
}

/// Loads the transaction named by the `txn` parameter; with `csrf`, the form's token must equal
/// the cookie's and the one stored with the transaction.
pub(crate) async fn load<S: Store>(
    app: &App<S>,
    jar: &CookieJar,
    params: &Params,
    csrf: bool,
) -> Result<Txn, PageError> {
    let handle = params
        .get("txn")
        .and_then(|raw| TransactionId::parse(raw).ok())
        .ok_or(PageError::TxnExpired)?;
    // A form posted to a transaction that is over (a replay, or a second tab that finished
    // first) is refused like any other failed CSRF check: 403.
    let gone = if csrf {
        PageError::FormExpired
    } else {
        PageError::TxnExpired
    };
    let stored = app
        .store
        .txn(&handle.hash(), app.now())
        .await?
        .ok_or(gone)?;
    if csrf {
        let form = params.get("csrf").and_then(|f| CsrfToken::parse(f).ok());
        let ok = match (csrf_cookie(app, jar), form) {
            (Some(c), Some(f)) => c.matches(&f) && f.hash().ct_eq(&stored.csrf_hash),
            _ => false,
        };
        if !ok {
            return Err(PageError::FormExpired);
        }
    }
    Ok(Txn { handle, stored })
}

/// The transaction's client, which may have been removed meanwhile.
pub(crate) async fn client<S: Store>(app: &App<S>, t: &Txn) -> Result<Arc<Client>, PageError> {
    app.client(&t.stored.request.client_id)
        .await?
        .ok_or(PageError::UnknownClient)
}

/// Whether a form post comes from our own pages (Fetch Metadata, then Origin), on top of the
/// CSRF token. Non-browser clients send neither header; the CSRF token still applies.
pub(crate) fn same_origin<S: Store>(app: &App<S>, headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin" || site == "none";
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => url::Url::parse(app.settings.issuer.as_str())
            .map(|u| u.origin().ascii_serialization() == origin)
            .unwrap_or(false),
        None => true,
    }
}

/// A checked form post on a transaction: same origin, a form, a live transaction whose CSRF
/// token matches, and its client.
#[derive(Debug)]
pub(crate) struct TxnForm {
    pub(crate) jar: CookieJar,
    pub(crate) params: Params,
    pub(crate) txn: Txn,
    pub(crate) client: Arc<Client>,
}

impl<S: Store> FromRequest<Arc<App<S>>> for TxnForm {
    /// Already rendered: the page needs the app's templates, which the state has.
    type Rejection = Response;

    async fn from_request(req: Request, app: &Arc<App<S>>) -> Result<TxnForm, Response> {
        let check = async {
            if !same_origin(app, req.headers()) {
                return Err(PageError::CrossSite);
            }
            let jar = CookieJar::from_headers(req.headers());
            let body = Bytes::from_request(req, app)
                .await
                .map_err(|_| PageError::InvalidForm)?;
            let params = Params::parse(&body).map_err(|_| PageError::InvalidForm)?;
            let txn = load(app, &jar, &params, true).await?;
            let client = client(app, &txn).await?;
            Ok(TxnForm {
                jar,
                params,
                txn,
                client,
            })
        };
        check.await.map_err(|e: PageError| e.render(app))
    }
}
