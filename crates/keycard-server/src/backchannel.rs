//! Back-channel logout delivery (OIDC Back-Channel Logout 1.0 §2.4–§2.8).
//!
//! The store queues a delivery, in the same transaction as what ended the sign-in (a logout, a
//! disabled or removed user, a password change); this task sends them: every second it takes
//! the due ones (of several nodes, one takes each, `Store::claim_logout_delivery`), signs a
//! fresh logout token — `typ` `logout+jwt`, `iss`, `aud` = the client, `iat`, `exp` two
//! minutes later, a new `jti`, `sub`, `sid` when known, the back-channel `events` member and no
//! `nonce` — and POSTs it as `logout_token`. A 2xx answer is delivered; anything else is
//! retried after 5 s, doubling to an hour, and given up after ten attempts. The attempts and
//! the last error stay visible (`keycard logout-deliveries`).

use std::sync::Arc;
use std::time::Duration;

use keycard_jose::TokenTyp;
use keycard_os::new_id;
use keycard_protocol::{Jti, UnixTime};
use keycard_store::{DeliveryOutcome, LogoutDelivery, Store};
use serde_json::json;

use crate::app::App;

/// The `events` member that makes a JWT a logout token (§2.4).
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Attempts before a delivery is given up.
const MAX_ATTEMPTS: i64 = 10;
/// How long one node holds a delivery it is sending.
const LEASE_SECS: i64 = 60;

/// Starts the sender.
pub(crate) fn spawn<S: Store>(app: &Arc<App<S>>) {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "back-channel logout sender cannot start");
            return;
        }
    };
    let a = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = a.now();
            let due = match a.store.due_logout_deliveries(now, 50).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "reading back-channel logouts failed");
                    continue;
                }
            };
            for d in due {
                match a
                    .store
                    .claim_logout_delivery(&d.id, now, now.plus(LEASE_SECS))
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming a back-channel logout failed");
                        continue;
                    }
                }
                let (a, http) = (a.clone(), http.clone());
                tokio::spawn(async move {
                    let outcome = deliver(&a, &http, &d).await;
                    if let Err(e) = a.store.finish_logout_delivery(&d.id, &outcome).await {
                        tracing::warn!(error = %e, "recording a back-channel logout failed");
                    }
                });
            }
        }
    });
}

async fn deliver<S: Store>(
    app: &App<S>,
    http: &reqwest::Client,
    d: &LogoutDelivery,
) -> DeliveryOutcome {
    let now = app.now();
    let claims = logout_claims(app, d, now);
    let key = app.keys.current().active.clone();
    // RSA signing costs about a millisecond: off the async runtime.
    let signed = tokio::task::spawn_blocking(move || key.sign(TokenTyp::LogoutToken, &claims))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let token = match signed {
        Ok(t) => t,
        Err(e) => return retry(d, now, e),
    };
    let sent = http
        .post(&d.uri)
        .form(&[("logout_token", token.as_str())])
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {
            tracing::info!(client = %d.client_id, "back-channel logout delivered");
            DeliveryOutcome::Delivered { at: app.now() }
        }
        Ok(r) => retry(d, now, format!("answered HTTP {}", r.status().as_u16())),
        Err(e) => retry(d, now, format!("not reached: {e}")),
    }
}

/// The next attempt after a failure: 5 s, doubling to an hour, until the attempts run out.
fn retry(d: &LogoutDelivery, now: UnixTime, error: String) -> DeliveryOutcome {
    tracing::warn!(client = %d.client_id, attempt = d.attempts + 1, error = %error, "back-channel logout failed");
    let attempt = d.attempts + 1;
    if attempt >= MAX_ATTEMPTS {
        return DeliveryOutcome::GaveUp { error };
    }
    let delay = (5i64 << (attempt - 1).min(20)).min(3600);
    DeliveryOutcome::Failed {
        error,
        retry_at: now.plus(delay),
    }
}

/// The claims of a logout token for one delivery (§2.4).
fn logout_claims<S: Store>(app: &App<S>, d: &LogoutDelivery, now: UnixTime) -> serde_json::Value {
    let mut claims = json!({
        "iss": app.settings.issuer.as_str(),
        "aud": d.client_id.as_str(),
        "iat": now.secs(),
        "exp": now.plus(120).secs(),
        "jti": new_id::<Jti>().as_str(),
        "sub": d.sub.as_str(),
        "events": { BACKCHANNEL_EVENT: {} },
    });
    if let Some(sid) = &d.sid {
        claims["sid"] = sid.as_str().into();
    }
    claims
}
