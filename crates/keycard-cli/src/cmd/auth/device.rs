//! The device flow's client side (RFC 8628 §3.1–§3.5): ask for the codes, show them (and with
//! `--json`, one JSON line on stdout before waiting, so scripts can drive it), then poll the
//! token endpoint at the interval the provider set — five seconds more after each `slow_down`
//! — until the user approves, denies, or the code expires.
//!
//! [`run`] returns the token response. Every wait is bounded: by the code's `expires_in`
//! (itself capped at 30 minutes), and each request by the HTTP client's timeout.

use std::io::Write as _;
use std::time::Duration;

use anyhow::{anyhow, bail};
use keycard_protocol::device::{DEFAULT_INTERVAL, SLOW_DOWN_STEP};
use keycard_protocol::token::TokenResponse;
use keycard_protocol::{ClientId, ErrorCode};

use super::provider::{Provider, TokenAnswer, error_line};

/// The longest a login waits for the user, whatever the provider says.
const MAX_WAIT: Duration = Duration::from_secs(30 * 60);

pub(crate) async fn run(
    p: &Provider,
    client_id: &ClientId,
    scope: &str,
    resource: Option<&str>,
    json: bool,
) -> anyhow::Result<TokenResponse> {
    let token_endpoint = p.endpoint("token endpoint", &p.meta.token_endpoint)?;
    let d = p.device_authorization(client_id, scope, resource).await?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "verification_uri": d.verification_uri,
                "verification_uri_complete": d.verification_uri_complete,
                "user_code": d.user_code,
                "expires_in": d.expires_in,
            })
        );
        let _ = std::io::stdout().flush();
    }
    eprintln!(
        "To sign in, open {} and enter the code {}",
        d.verification_uri, d.user_code
    );
    if let Some(c) = &d.verification_uri_complete {
        eprintln!("(or open {c})");
    }
    let lifetime = Duration::from_secs(u64::try_from(d.expires_in.max(1)).unwrap_or(1));
    let deadline = tokio::time::Instant::now() + lifetime.min(MAX_WAIT);
    let mut interval = if d.interval > 0 {
        d.interval
    } else {
        DEFAULT_INTERVAL
    };
    let form = [
        ("grant_type", keycard_protocol::device::GRANT_TYPE),
        ("device_code", d.device_code.secret()),
    ];
    loop {
        let wait = Duration::from_secs(u64::try_from(interval).unwrap_or(5));
        if tokio::time::Instant::now() + wait > deadline {
            bail!("the code expired before it was approved; run `keycard auth login` again");
        }
        tokio::time::sleep(wait).await;
        match p.token(token_endpoint, client_id, &form).await? {
            TokenAnswer::Tokens(t) => return Ok(*t),
            TokenAnswer::Error(e) => match e.code() {
                Some(ErrorCode::AuthorizationPending) => {}
                // RFC 8628 §3.5: this and every later poll waits five seconds more.
                Some(ErrorCode::SlowDown) => interval = interval.saturating_add(SLOW_DOWN_STEP),
                Some(ErrorCode::AccessDenied) => bail!("the sign-in was denied"),
                Some(ErrorCode::ExpiredToken) => {
                    bail!("the code expired before it was approved; run `keycard auth login` again")
                }
                _ => {
                    return Err(anyhow!(
                        "the provider refused the device code: {}",
                        error_line(&e)
                    ));
                }
            },
        }
    }
}
