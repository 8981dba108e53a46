//! What the HTML pages (authorize, login, consent, logout, device) share: one error type with
//! one render map ([`PageError::render`]), the cookies they set, the scope list they show, the
//! transaction form ([`txn::TxnForm`]) every form post starts from, and password sign-in
//! ([`signin`]).
//!
//! The errors of the authorization endpoint keep RFC 6749 §4.1.2.1's two channels: what may not
//! be redirected (an untrusted client or redirect URI) is shown on Keycard's page, everything
//! else goes back to the client as a 303 with `error`, `state` and `iss` (RFC 9207).

pub(crate) mod signin;
pub(crate) mod txn;

use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::cookie::{Cookie, SameSite};
use keycard_protocol::authorize::AuthorizeError;
use keycard_protocol::redirect::RedirectUri;
use keycard_protocol::{OAuthError, ScopeSet, State, wire};
use keycard_store::{Store, StoreError};
use serde_json::json;

use crate::app::App;
use crate::http::{html, redirect_303};

/// The browser session cookie (SSO).
pub(crate) const SESSION_COOKIE: &str = "keycard_session";
/// The double-submitted CSRF cookie of the login, consent and logout forms.
pub(crate) const CSRF_COOKIE: &str = "keycard_csrf";

/// Why a page cannot go on. [`PageError::render`] is the one place these become responses.
#[derive(Debug)]
pub(crate) enum PageError {
    /// The request cannot be trusted enough to redirect (RFC 6749 §4.1.2.1): our page.
    Invalid(OAuthError),
    /// The client and redirect URI are trusted: a 303 back with the error.
    RedirectToClient {
        redirect_uri: RedirectUri,
        state: Option<State>,
        error: OAuthError,
    },
    /// The transaction named in the page URL is unknown or over.
    TxnExpired,
    /// The CSRF token of a form post does not match.
    FormExpired,
    /// A form posted from another site (Fetch Metadata or Origin).
    CrossSite,
    /// A form body that is not a form.
    InvalidForm,
    /// The client of a transaction was removed meanwhile.
    UnknownClient,
    /// A step that needs a signed-in user found none.
    NotSignedIn,
    /// Too many new sign-ins from one address.
    TooManyRequests,
    Store(StoreError),
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        PageError::Store(e)
    }
}

impl From<AuthorizeError> for PageError {
    fn from(e: AuthorizeError) -> Self {
        match e {
            AuthorizeError::ShowToUser(e) => PageError::Invalid(e),
            AuthorizeError::RedirectToClient {
                redirect_uri,
                state,
                error,
            } => PageError::RedirectToClient {
                redirect_uri,
                state,
                error,
            },
        }
    }
}

impl PageError {
    /// The page (or redirect) for this error.
    pub(crate) fn render<S: Store>(self, app: &App<S>) -> Response {
        let (status, title, message, code) = match self {
            PageError::RedirectToClient {
                redirect_uri,
                state,
                error,
            } => {
                return redirect_303(&wire::authorize_error_redirect(
                    &redirect_uri,
                    &error,
                    state.as_ref(),
                    &app.settings.issuer,
                ));
            }
            PageError::Invalid(e) => {
                let message = e
                    .description
                    .as_deref()
                    .unwrap_or("The request is invalid.");
                return error_page(
                    app,
                    StatusCode::BAD_REQUEST,
                    "This sign-in request is invalid",
                    message,
                    Some(e.code.as_str()),
                );
            }
            PageError::TxnExpired => (
                StatusCode::BAD_REQUEST,
                "This sign-in link has expired",
                "Go back to the application and start again.",
                None,
            ),
            PageError::FormExpired => (
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The security token did not match. Go back to the application and start again.",
                None,
            ),
            PageError::CrossSite => (
                StatusCode::FORBIDDEN,
                "Cross-site request refused",
                "Use the form on this site's own page.",
                None,
            ),
            PageError::InvalidForm => (
                StatusCode::BAD_REQUEST,
                "Invalid form",
                "The form could not be read.",
                None,
            ),
            PageError::UnknownClient => (
                StatusCode::BAD_REQUEST,
                "Unknown application",
                "This application no longer exists.",
                None,
            ),
            PageError::NotSignedIn => (
                StatusCode::BAD_REQUEST,
                "Not signed in",
                "Please sign in again.",
                None,
            ),
            PageError::TooManyRequests => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-in attempts",
                "Too many sign-ins were started from your network. Wait a minute and try again.",
                None,
            ),
            PageError::Store(e) => {
                tracing::error!(error = %e, "storage failure");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    "Please try again in a moment.",
                    None,
                )
            }
        };
        error_page(app, status, title, message, code)
    }
}

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

/// A page handler's outcome, rendered.
pub(crate) fn respond<S: Store>(app: &App<S>, r: Result<Response, PageError>) -> Response {
    r.unwrap_or_else(|e| e.render(app))
}

/// The scopes a consent or device confirmation page lists, each with what it means to a person.
pub(crate) fn scope_list(scope: &ScopeSet) -> Vec<serde_json::Value> {
    let describe = |s: &str| match s {
        "openid" => "Sign you in with your Keycard identity",
        "profile" => "Your name and picture",
        "email" => "Your email address",
        "offline_access" => "Stay signed in (refresh tokens)",
        _ => "",
    };
    scope
        .iter()
        .map(|s| json!({ "name": s.as_str(), "description": describe(s.as_str()) }))
        .collect()
}

/// One of our cookies: HttpOnly, SameSite=Lax (the login must survive the cross-site
/// navigation from the app), Path=/, and Secure with the `__Host-` prefix under https.
pub(crate) fn cookie<S: Store>(app: &App<S>, name: &str, value: String) -> Cookie<'static> {
    let mut c = Cookie::new(app.settings.cookie_name(name), value);
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_path("/");
    c.set_secure(app.settings.issuer.is_https());
    c
}
