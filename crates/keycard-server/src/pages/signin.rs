//! Signing in with a password (OIDC Core §3.1.2.3; ASVS 6.3.1, 7.2.4), shared by the login page
//! and the device verification page.
//!
//! [`password`] reserves the attempt against the login throttle before any hashing, checks the
//! password with argon2id (a dummy hash for unknown users, so timing does not tell whether an
//! account exists), and on success creates a fresh browser session — replacing any old one
//! (session fixation) — and sets its cookie.
//!
//! Not here: what a page does next (the authorization flow's next step, or the device
//! confirmation), and how the page shows a failure.

use std::net::IpAddr;

use axum_extra::extract::CookieJar;
use keycard_os::{new_id, new_secret};
use keycard_protocol::{SessionToken, Username};
use keycard_store::{Session, Store, StoreError, User};

use super::{SESSION_COOKIE, cookie};
use crate::app::App;

/// What a page says when [`SignIn::Failed`].
pub(crate) const FAILED: &str = "Wrong username or password.";
/// What a page says when [`SignIn::Throttled`] (with `Retry-After`).
pub(crate) const THROTTLED: &str = "Too many attempts. Wait a moment and try again.";

/// How a password sign-in ended.
#[derive(Debug)]
pub(crate) enum SignIn {
    /// The throttle holds this attempt back for this many seconds; no hash was computed.
    Throttled(i64),
    /// Wrong username or password, or a disabled account: one answer for all three.
    Failed,
    /// Signed in (boxed: the other outcomes are a number or nothing).
    SignedIn(Box<NewSession>),
}

/// A successful sign-in: the new session, its user, and the jar with the session cookie.
#[derive(Debug)]
pub(crate) struct NewSession {
    pub(crate) jar: CookieJar,
    pub(crate) session: Session,
    pub(crate) user: User,
}

/// Signs in with what the user typed.
pub(crate) async fn password<S: Store>(
    app: &App<S>,
    ip: IpAddr,
    jar: &CookieJar,
    typed: &str,
    password: String,
) -> Result<SignIn, StoreError> {
    let now = app.now();
    let username = Username::parse(typed).ok();
    // Reserved (and counted as a failure) before the hash: parallel guesses cannot walk past
    // the limit, and a locked attempt costs no argon2 work.
    if let Some(wait) = crate::throttle::reserve(&app.store, typed, &ip, now).await? {
        crate::metrics::login_failed("throttled");
        return Ok(SignIn::Throttled(wait));
    }
    let user = match &username {
        Some(u) => app.store.user_by_username(u).await?,
        None => None,
    };
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
            return Ok(SignIn::Failed);
        }
    };
    crate::throttle::succeeded(&app.store, typed, &ip).await?;
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
    tracing::info!(user = %user.id, "login succeeded");
    let jar = jar
        .clone()
        .add(cookie(app, SESSION_COOKIE, raw.secret().to_owned()));
    Ok(SignIn::SignedIn(Box::new(NewSession {
        jar,
        session,
        user,
    })))
}
