//! Server settings, already validated: the CLI parses files and environment into [`Settings`],
//! and nothing in this crate reads either.

use std::time::Duration;

use keycard_jose::Alg;
use keycard_protocol::Issuer;
use keycard_protocol::issue::Lifetimes;

/// Server settings, already validated (the CLI parses files and environment into this).
#[derive(Clone, Debug)]
pub struct Settings {
    pub issuer: Issuer,
    pub signing_alg: Alg,
    pub access_token_ttl_secs: i64,
    pub id_token_ttl_secs: i64,
    /// Refresh tokens expire after this long unused (each rotation starts it again).
    pub refresh_token_ttl_secs: i64,
    /// A grant's absolute lifetime: refresh tokens rotate, but never past it; then the user
    /// signs in again.
    pub grant_ttl_secs: i64,
    /// Signing keys rotate on this schedule (the next key, published long before, becomes
    /// active); `None` rotates only by `keycard keys rotate`.
    pub key_rotation_secs: Option<i64>,
    /// New login transactions one client address may start per minute (each is a stored row,
    /// created before anyone has authenticated).
    pub txn_per_minute: u32,
    /// How often each node reads the revocation log for new events (another node's
    /// revocations reach this node's feed streams this late at most, plus the read).
    pub feed_poll: Duration,
    /// How often an idle feed stream gets a keep-alive comment.
    pub feed_keep_alive: Duration,
    /// Authorization codes live at most 60 s (FAPI 2.0; RFC 6749 recommends ≤ 10 min).
    pub code_ttl_secs: i64,
    pub session_ttl_secs: i64,
    /// How long a login/consent transaction may stay open.
    pub txn_ttl_secs: i64,
    /// How long a device code and its user code live (RFC 8628 §3.2 `expires_in`).
    pub device_code_ttl_secs: i64,
    /// The polling interval devices are told to keep (RFC 8628 §3.2 `interval`).
    pub device_poll_interval_secs: i64,
    /// How often signing keys are re-read from the store (rotation by another process).
    pub key_reload: Duration,
    /// How long clients and APIs are served from memory before being re-read.
    pub cache_ttl: Duration,
    /// Adds the `/demo` pages that help walk the README quickstart.
    pub demo: bool,
}

impl Settings {
    pub fn new(issuer: Issuer) -> Settings {
        Settings {
            issuer,
            signing_alg: Alg::RS256,
            access_token_ttl_secs: 3600,
            id_token_ttl_secs: 3600,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            grant_ttl_secs: 90 * 24 * 3600,
            key_rotation_secs: Some(90 * 24 * 3600),
            txn_per_minute: 60,
            feed_poll: Duration::from_millis(250),
            feed_keep_alive: Duration::from_secs(10),
            code_ttl_secs: 60,
            session_ttl_secs: 24 * 3600,
            txn_ttl_secs: 600,
            device_code_ttl_secs: 600,
            device_poll_interval_secs: keycard_protocol::device::DEFAULT_INTERVAL,
            key_reload: Duration::from_secs(2),
            cache_ttl: Duration::from_secs(1),
            demo: false,
        }
    }

    /// The longest lifetime of any JWT this server signs: a retired key stays published that long.
    pub fn max_jwt_ttl(&self) -> i64 {
        self.access_token_ttl_secs
            .max(self.id_token_ttl_secs)
            .max(24 * 3600)
    }

    /// Cookies get the `__Host-` prefix and `Secure` when the issuer is https.
    pub fn cookie_name(&self, base: &str) -> String {
        if self.issuer.is_https() {
            format!("__Host-{base}")
        } else {
            base.to_owned()
        }
    }
}

impl Settings {
    /// The lifetimes [`keycard_protocol::issue`] decides with.
    pub fn lifetimes(&self) -> Lifetimes {
        Lifetimes {
            access_token: self.access_token_ttl_secs,
            id_token: self.id_token_ttl_secs,
            refresh_token: self.refresh_token_ttl_secs,
        }
    }
}
