//! The verification page `/device` (RFC 8628 §3.3, §5.1, §5.4): the user enters the code their
//! device shows, signs in, and approves or denies on a confirmation page.
//!
//! `GET /device` shows the code form; `?user_code=` (`verification_uri_complete`, §3.3.1) only
//! fills it in — nothing is looked up or decided until the user submits. `POST /device` is one
//! CSRF-protected form (same origin, the CSRF cookie repeated in the form) whose `action` is
//! `enter`, `sign_in`, `approve` or `deny`, each carrying the user code. Every post that names a
//! well-formed code is reserved against the code-entry throttle (per browser and per address,
//! `throttle::reserve_code_entry`) before the lookup, and refunded when the code is live, so
//! wrong codes are counted and bounded however they arrive. The confirmation names the client,
//! the scopes, when and from which address the device asked, and tells the user to deny if they
//! did not start this themselves (§5.4, remote phishing); it is shown every time, whatever
//! consent was remembered. Approving records the consent (per API, as the consent page does)
//! and creates the grant — refresh tokens only with `offline_access`, revocable like any other —
//! which the device then collects at the token endpoint.
//!
//! Not here: the device's side (`device_authorization`, the token endpoint's device grant) and
//! password checking (`pages::signin`).

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use keycard_os::new_id;
use keycard_protocol::device::{DeviceState, UserCode};
use keycard_protocol::form::Params;
use keycard_protocol::policy::Client;
use keycard_protocol::{CsrfToken, UnixTime};
use keycard_store::{DeviceAuthorization, DeviceDecision, Grant, Session, Store};
use serde_json::{Value, json};

use crate::app::App;
use crate::flow::current_session;
use crate::http::{ClientIp, html, is_form, retry_after};
use crate::pages::signin::{self, SignIn};
use crate::pages::txn::{checked_csrf, csrf_or_new};
use crate::pages::{PageError, respond, scope_list};

const INVALID_CODE: &str = "That code is not valid or has expired. Check the code on your device.";
const TOO_MANY_CODES: &str = "Too many codes were tried. Wait a moment and try again.";

pub(crate) async fn device_get<S: Store>(
    State(app): State<Arc<App<S>>>,
    jar: CookieJar,
    RawQuery(q): RawQuery,
) -> Response {
    let r = async {
        let params = Params::parse(q.unwrap_or_default().as_bytes()).unwrap_or_default();
        // Pre-filled from `verification_uri_complete`, never submitted for the user.
        let prefill = params
            .get("user_code")
            .and_then(UserCode::parse)
            .map(|c| c.display())
            .unwrap_or_default();
        let session = current_session(&app, &jar).await?;
        let (jar, csrf) = csrf_or_new(&app, jar);
        let page = Page {
            csrf: &csrf,
            username: session
                .as_ref()
                .map(|(_, u)| u.username.as_str().to_owned()),
        };
        let body = page.enter(&app, StatusCode::OK, &prefill, None);
        Ok((jar, body).into_response())
    };
    respond(&app, r.await)
}

pub(crate) async fn device_post<S: Store>(
    State(app): State<Arc<App<S>>>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(&app, device_form(&app, ip, jar, &headers, &body).await)
}

async fn device_form<S: Store>(
    app: &App<S>,
    ip: IpAddr,
    jar: CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, PageError> {
    if !is_form(headers) {
        return Err(PageError::InvalidForm);
    }
    let params = Params::parse(body).map_err(|_| PageError::InvalidForm)?;
    let csrf = checked_csrf(app, &jar, headers, &params)?;
    let session = current_session(app, &jar).await?;
    let page = Page {
        csrf: &csrf,
        username: session
            .as_ref()
            .map(|(_, u)| u.username.as_str().to_owned()),
    };
    let typed: String = params
        .get("user_code")
        .unwrap_or("")
        .chars()
        .take(64)
        .collect();
    // A malformed code cannot be anyone's: it is refused without a lookup, and not counted.
    let Some(code) = UserCode::parse(&typed) else {
        return Ok(page.enter(app, StatusCode::BAD_REQUEST, &typed, Some(INVALID_CODE)));
    };
    let browser = match &session {
        Some((s, _)) => format!("s {}", s.sid.as_str()),
        None => format!("c {}", hex(csrf.hash().as_bytes())),
    };
    let now = app.now();
    if let Some(wait) = crate::throttle::reserve_code_entry(&app.store, &browser, &ip, now).await? {
        let p = page.enter(
            app,
            StatusCode::TOO_MANY_REQUESTS,
            &typed,
            Some(TOO_MANY_CODES),
        );
        return Ok(retry_after(p, wait));
    }
    let Some(d) = app
        .store
        .device_authorization(&code.hash(), now)
        .await?
        .filter(|d| d.state == DeviceState::Pending)
    else {
        return Ok(page.enter(app, StatusCode::BAD_REQUEST, &typed, Some(INVALID_CODE)));
    };
    crate::throttle::refund_code_entry(&app.store, &browser, &ip).await?;
    let client = app
        .client(&d.client_id)
        .await?
        .ok_or(PageError::UnknownClient)?;
    let asked = Asked {
        code: &code,
        device: &d,
        client: &client,
    };
    let action = params.get("action").unwrap_or("enter");
    let (jar, (session, user)) = match (action, session) {
        ("sign_in", _) => {
            let typed_user: String = params
                .get("username")
                .unwrap_or("")
                .chars()
                .take(255)
                .collect();
            let password = params.get("password").unwrap_or("").to_owned();
            match signin::password(app, ip, &jar, &typed_user, password).await? {
                SignIn::Throttled(wait) => {
                    let status = StatusCode::TOO_MANY_REQUESTS;
                    let p = page.sign_in(app, status, &asked, &typed_user, Some(signin::THROTTLED));
                    return Ok(retry_after(p, wait));
                }
                SignIn::Failed => {
                    let status = StatusCode::UNAUTHORIZED;
                    return Ok(page.sign_in(
                        app,
                        status,
                        &asked,
                        &typed_user,
                        Some(signin::FAILED),
                    ));
                }
                SignIn::SignedIn(n) => (n.jar, (n.session, n.user)),
            }
        }
        (_, None) => return Ok(page.sign_in(app, StatusCode::OK, &asked, "", None)),
        (_, Some(s)) => (jar, s),
    };
    let page = Page {
        csrf: &csrf,
        username: Some(user.username.as_str().to_owned()),
    };
    let answer = match action {
        "approve" => approve(app, &asked, &session).await?,
        "deny" => deny(app, &asked).await?,
        _ => page.confirm(app, &asked),
    };
    Ok((jar, answer).into_response())
}

/// The authorization the user is looking at.
struct Asked<'a> {
    code: &'a UserCode,
    device: &'a DeviceAuthorization,
    client: &'a Client,
}

/// Creates the grant for the signed-in user and records the answer; remembers the consent.
async fn approve<S: Store>(
    app: &App<S>,
    asked: &Asked<'_>,
    session: &Session,
) -> Result<Response, PageError> {
    let now = app.now();
    let d = asked.device;
    let grant = Grant {
        id: new_id(),
        client_id: d.client_id.clone(),
        user_id: session.user_id.clone(),
        scope: d.scope.clone(),
        audience: d.audience.clone(),
        auth_time: session.auth_time,
        // The device is not part of this browser's session: signing out here does not end
        // it (the grant is revoked like any other, or by the user's account changes).
        sid: None,
        nonce: None,
        created_at: now,
        expires_at: Some(now.plus(app.settings.grant_ttl_secs)),
    };
    let recorded = app
        .store
        .decide_device_authorization(&asked.code.hash(), DeviceDecision::Approve(&grant), now)
        .await?;
    if !recorded {
        return Ok(message(
            app,
            StatusCode::BAD_REQUEST,
            "This code was already used",
            "It was answered already, or it has expired. Start again on your device.",
        ));
    }
    let audience = d.audience.as_ref();
    let previous = app
        .store
        .consent(&session.user_id, &d.client_id, audience)
        .await?
        .unwrap_or_default();
    app.store
        .record_consent(
            &session.user_id,
            &d.client_id,
            audience,
            &previous.union(&d.scope),
        )
        .await?;
    tracing::info!(user = %session.user_id, client = %d.client_id, "device approved");
    Ok(message(
        app,
        StatusCode::OK,
        "Device connected",
        &format!(
            "{} can now use your account. You can close this window and return to your device.",
            asked.client.name
        ),
    ))
}

async fn deny<S: Store>(app: &App<S>, asked: &Asked<'_>) -> Result<Response, PageError> {
    let recorded = app
        .store
        .decide_device_authorization(&asked.code.hash(), DeviceDecision::Deny, app.now())
        .await?;
    let (status, title) = if recorded {
        (StatusCode::OK, "Request denied")
    } else {
        (StatusCode::BAD_REQUEST, "This code was already used")
    };
    Ok(message(
        app,
        status,
        title,
        &format!("Nothing was shared with {}.", asked.client.name),
    ))
}

fn message<S: Store>(app: &App<S>, status: StatusCode, title: &str, message: &str) -> Response {
    let page = app.templates.render(
        "message.html",
        json!({ "title": title, "message": message }),
    );
    html(status, page)
}

/// The three steps of `device.html`, with what every step shows.
struct Page<'a> {
    csrf: &'a CsrfToken,
    /// Who is signed in, if anyone.
    username: Option<String>,
}

impl Page<'_> {
    fn render<S: Store>(&self, app: &App<S>, status: StatusCode, mut ctx: Value) -> Response {
        ctx["csrf"] = self.csrf.secret().into();
        ctx["username"] = self.username.as_deref().into();
        html(status, app.templates.render("device.html", ctx))
    }

    fn enter<S: Store>(
        &self,
        app: &App<S>,
        status: StatusCode,
        typed: &str,
        error: Option<&str>,
    ) -> Response {
        self.render(
            app,
            status,
            json!({ "step": "enter", "user_code": typed, "error": error }),
        )
    }

    fn sign_in<S: Store>(
        &self,
        app: &App<S>,
        status: StatusCode,
        asked: &Asked<'_>,
        typed_user: &str,
        error: Option<&str>,
    ) -> Response {
        self.render(
            app,
            status,
            json!({
                "step": "sign_in", "user_code": asked.code.display(),
                "client_name": asked.client.name, "typed_user": typed_user, "error": error,
            }),
        )
    }

    fn confirm<S: Store>(&self, app: &App<S>, asked: &Asked<'_>) -> Response {
        let d = asked.device;
        self.render(
            app,
            StatusCode::OK,
            json!({
                "step": "confirm", "user_code": asked.code.display(),
                "client_name": asked.client.name, "scopes": scope_list(&d.scope),
                "audience": d.audience, "requested_at": utc(d.created_at),
                "requested_from": d.requested_from.map(|ip| ip.to_string()),
            }),
        )
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `YYYY-MM-DD HH:MM:SS UTC` (the civil-from-days algorithm of H. Hinnant, proleptic
/// Gregorian), so the page needs no date library.
fn utc(t: UnixTime) -> String {
    let secs = t.secs();
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_civil_time() {
        assert_eq!(utc(UnixTime(0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(UnixTime(1_800_000_000)), "2027-01-15 08:00:00 UTC");
        assert_eq!(utc(UnixTime(951_782_400)), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(UnixTime(-1)), "1969-12-31 23:59:59 UTC");
    }
}
