//! The records the store reads and writes, typed with the protocol's values.

use std::fmt;

use std::net::IpAddr;

use keycard_protocol::authorize::AuthorizeRequest;
use keycard_protocol::claims::Profile;
use keycard_protocol::device::{DeviceState, Poll};
use keycard_protocol::pkce::CodeChallenge;
use keycard_protocol::redirect::RedirectUri;
use keycard_protocol::revocation::RevocationEvent;

use keycard_protocol::{
    Audience, ClientId, GrantId, Jti, Kid, Nonce, ScopeSet, SecretHash, SessionId, UnixTime,
    UserId, Username, kind,
};

/// An argon2id PHC string. Not the password, but still kept out of `Debug` output: a hash is
/// what an offline guessing attack starts from.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn from_phc(phc: String) -> PasswordHash {
        PasswordHash(phc)
    }

    pub fn as_phc(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

/// A login-throttle counter's key: an account, or a client address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ThrottleKey(String);

impl ThrottleKey {
    /// The counter of one account.
    pub fn account(folded_username: &str) -> ThrottleKey {
        ThrottleKey(format!("a:{folded_username}"))
    }

    /// The counter of one client address.
    pub fn address(ip: &std::net::IpAddr) -> ThrottleKey {
        ThrottleKey(format!("i:{ip}"))
    }

    /// A counter of another shape (e.g. an account from one address), named by the caller.
    pub fn other(prefix: char, value: &str) -> ThrottleKey {
        ThrottleKey(format!("{prefix}:{value}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub password_hash: PasswordHash,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub disabled: bool,
    pub created_at: UnixTime,
}

impl User {
    /// The claims this user's tokens may carry (OIDC Core §5.1).
    pub fn profile(&self) -> Profile {
        Profile {
            sub: self.id.clone(),
            name: self.name.clone(),
            given_name: self.given_name.clone(),
            family_name: self.family_name.clone(),
            picture: self.picture.clone(),
            email: self.email.clone(),
            email_verified: self.email_verified,
        }
    }
}

/// Life cycle of a signing key (published before use, kept after use until its tokens expire).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Published in the JWKS, not yet signing.
    Next,
    /// Signing new tokens.
    Active,
    /// No longer signing; published until `retire_until`.
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "next" => Some(KeyState::Next),
            "active" => Some(KeyState::Active),
            "retired" => Some(KeyState::Retired),
            _ => None,
        }
    }
}

/// A signing key as stored: the private key is encrypted by the caller before it gets here.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: Kid,
    pub alg: String,
    pub private_key_enc: Vec<u8>,
    pub state: KeyState,
    pub created_at: UnixTime,
    /// For retired keys: when the last token it signed expires; after that it is deleted.
    pub retire_until: Option<UnixTime>,
    /// When it became the active key (scheduled rotation counts from here).
    pub activated_at: Option<UnixTime>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// A browser (SSO) session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id_hash: SecretHash<kind::SessionToken>,
    pub user_id: UserId,
    pub auth_time: UnixTime,
    /// The public session id put in id tokens (`sid`).
    pub sid: SessionId,
    pub expires_at: UnixTime,
}

/// A pending authorization request between /authorize and the redirect back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthTxn {
    pub id_hash: SecretHash<kind::TransactionId>,
    pub request: AuthorizeRequest,
    /// Hash of the CSRF token bound to this transaction (double-submitted via cookie and form).
    pub csrf_hash: SecretHash<kind::CsrfToken>,
    /// Set when the user typed the password during this transaction.
    pub authenticated_user: Option<UserId>,
    pub expires_at: UnixTime,
}

/// An authorization grant: the family that codes, refresh tokens and access tokens belong to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub id: GrantId,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub scope: ScopeSet,
    pub audience: Option<Audience>,
    pub auth_time: UnixTime,
    pub sid: Option<SessionId>,
    pub nonce: Option<Nonce>,
    pub created_at: UnixTime,
    /// The grant's absolute end, past which no refresh token of it works.
    pub expires_at: Option<UnixTime>,
}

/// An authorization code as stored (RFC 6749 §4.1.2: bound to client, redirect URI and challenge).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Code {
    pub hash: SecretHash<kind::AuthorizationCode>,
    pub grant: Grant,
    pub redirect_uri: RedirectUri,
    pub redirect_uri_sent: bool,
    pub code_challenge: CodeChallenge,
    pub expires_at: UnixTime,
    pub used: bool,
}

/// A refresh token to insert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRefreshToken {
    pub hash: SecretHash<kind::RefreshToken>,
    pub grant_id: GrantId,
    pub scope: ScopeSet,
    pub expires_at: UnixTime,
}

/// A refresh token as loaded, with its grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRefreshToken {
    pub hash: SecretHash<kind::RefreshToken>,
    pub grant: Grant,
    pub scope: ScopeSet,
    pub expires_at: UnixTime,
    /// True once rotated; presenting it again is reuse (RFC 9700 §4.14.2).
    pub used: bool,
    pub grant_revoked: bool,
    /// The grant's user exists and is not disabled (read in the same query).
    pub user_active: bool,
}

/// An access token issued from a grant. Its `jti` names the grant (so the grant's revocation
/// reaches it without a row per token); the store keeps the grant, and with it that revocation
/// state, at least until `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessTokenRecord {
    pub grant_id: GrantId,
    pub expires_at: UnixTime,
}

impl AccessTokenRecord {
    /// Whether keeping the grant until this token expires needs a write: not when a refresh
    /// token issued with it outlives it (the grant is kept while any refresh token is stored).
    pub fn outlives(&self, refresh: Option<&NewRefreshToken>) -> bool {
        refresh.is_none_or(|r| self.expires_at > r.expires_at)
    }
}

/// Outcome of a single-use redemption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redeemed {
    /// This call won; the new records were written.
    Won,
    /// Someone redeemed it first; nothing was written.
    AlreadyUsed,
}

/// When a revocation happens, and until when it matters: after `until` no token it could
/// reach is still valid (the server passes its longest token lifetime), and the log may drop it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revocation {
    pub at: UnixTime,
    pub until: UnixTime,
}

/// What [`crate::Store::access_token_revoked`] is asked about one verified access token.
#[derive(Clone, Copy, Debug)]
pub struct RevocationQuery<'a> {
    pub jti: &'a Jti,
    /// The grant its `jti` names, if any: revoked or gone revokes the token.
    pub grant: Option<&'a GrantId>,
    /// Its user, when the caller wants the user's state checked (disabled or gone revokes).
    pub user: Option<&'a UserId>,
    pub client: &'a ClientId,
    pub iat: UnixTime,
}

/// A page of the revocation log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationLog {
    /// Events after the asked sequence number, ascending.
    pub events: Vec<RevocationEvent>,
    /// The highest sequence number handed out so far.
    pub last: u64,
    /// The lowest sequence number still kept (`last + 1` when none is).
    pub oldest: u64,
}

/// One counter a login attempt is reserved against.
#[derive(Clone, Debug)]
pub struct ThrottleRule {
    pub key: ThrottleKey,
    /// Lock time, in seconds, after this many failures.
    pub policy: fn(i64) -> i64,
    /// The rule's lock applies only when this other counter has failures (a lock that an
    /// address with no failures for the account still passes). The counter still counts.
    pub only_if_failed: Option<ThrottleKey>,
}

/// A back-channel logout token to deliver (OIDC Back-Channel Logout 1.0 §2.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogoutDelivery {
    pub id: String,
    pub client_id: ClientId,
    pub uri: String,
    pub sub: UserId,
    pub sid: Option<SessionId>,
    pub created_at: UnixTime,
    pub next_attempt_at: UnixTime,
    pub attempts: i64,
    pub delivered_at: Option<UnixTime>,
    pub last_error: Option<String>,
}

impl LogoutDelivery {
    /// The `next_attempt_at` of a delivery that was given up: it is never due again.
    pub const NEVER: UnixTime = UnixTime(i64::MAX);

    /// Delivered, given up, or waiting for its next attempt.
    pub fn status(&self) -> DeliveryStatus {
        match self.delivered_at {
            Some(at) => DeliveryStatus::Delivered { at },
            None if self.next_attempt_at == Self::NEVER => DeliveryStatus::GaveUp,
            None => DeliveryStatus::Pending {
                next_attempt_at: self.next_attempt_at,
            },
        }
    }
}

/// Where a delivery stands, for administrators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    Delivered {
        at: UnixTime,
    },
    /// Tried again at `next_attempt_at`.
    Pending {
        next_attempt_at: UnixTime,
    },
    /// The attempts ran out; `last_error` says why.
    GaveUp,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Delivered { .. } => "delivered",
            DeliveryStatus::Pending { .. } => "pending",
            DeliveryStatus::GaveUp => "gave_up",
        }
    }
}

/// How a delivery attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered {
        at: UnixTime,
    },
    /// Try again at `retry_at`.
    Failed {
        error: String,
        retry_at: UnixTime,
    },
    /// Stop trying.
    GaveUp {
        error: String,
    },
}

/// A device authorization (RFC 8628 §3.1–§3.5) as stored: the device code and the user code
/// appear only as hashes; what was asked, where it stands, and the poll state the interval is
/// enforced by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAuthorization {
    pub hash: SecretHash<kind::DeviceCode>,
    pub user_code: SecretHash<kind::UserCode>,
    pub client_id: ClientId,
    /// The scope granted on approval, after policy.
    pub scope: ScopeSet,
    pub audience: Option<Audience>,
    /// The address the device asked from, shown on the confirmation page (§5.4).
    pub requested_from: Option<IpAddr>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    /// The interval the device must keep, in seconds (grown by each `slow_down`).
    pub interval: i64,
    pub last_poll_at: Option<UnixTime>,
    pub state: DeviceState,
    /// The grant made on approval.
    pub grant_id: Option<GrantId>,
}

/// The user's answer on the verification page.
#[derive(Clone, Copy, Debug)]
pub enum DeviceDecision<'a> {
    /// Approve: this grant is created with the answer, in the same transaction.
    Approve(&'a Grant),
    Deny,
}

/// One poll of a device code, as [`keycard_protocol::device::poll`] decided it in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevicePoll {
    pub outcome: Poll,
    /// The grant made on approval, if it is still stored: what an approved code's tokens are
    /// issued from, and what a second redemption revokes.
    pub grant: Option<Grant>,
}
