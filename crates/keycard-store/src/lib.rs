//! The `Store` trait: Keycard's persistence, named after protocol operations.
//!
//! Each method is one atomic operation, so transactions never leak out of the trait: a code is
//! redeemed (marked used, refresh token and access-token record written) in one step; a refresh
//! token is rotated in one step with exactly one winner under concurrency.
//!
//! Invariants: only hashes of codes, refresh tokens, session ids, transaction ids and client
//! secrets cross this boundary, each typed by its kind (`SecretHash<kind::AuthorizationCode>`
//! cannot be passed where a session's hash is expected); every id is its protocol newtype, so
//! a user id and a client id cannot be swapped; time is always a parameter (`now`); no SQL types
//! appear in signatures. Implementations: keycard-store-sql (SQLite and PostgreSQL), which must
//! pass [`conformance`].

use std::fmt;
use std::future::Future;

use keycard_protocol::authorize::AuthorizeRequest;
use keycard_protocol::claims::Profile;
use keycard_protocol::pkce::CodeChallenge;
use keycard_protocol::policy::{Api, Client};
use keycard_protocol::redirect::RedirectUri;
use keycard_protocol::{
    Audience, ClientId, GrantId, Jti, Kid, Nonce, ScopeSet, SecretHash, SessionId, UnixTime,
    UserId, Username, kind,
};

pub mod conformance;

/// Errors a store reports. Callers map all of them to `server_error`/`temporarily_unavailable`
/// except `Conflict` on creation, which admin commands report.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    Conflict,
    #[error("not found")]
    NotFound,
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

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

/// Persistence for the authorization server.
pub trait Store: Send + Sync + 'static {
    /// Cheap liveness check for `/readyz`.
    fn ping(&self) -> impl Future<Output = Result<()>> + Send;

    // Users.
    fn create_user(&self, user: &User) -> impl Future<Output = Result<()>> + Send;
    fn user_by_username(
        &self,
        username: &Username,
    ) -> impl Future<Output = Result<Option<User>>> + Send;
    fn user_by_id(&self, id: &UserId) -> impl Future<Output = Result<Option<User>>> + Send;
    fn list_users(&self) -> impl Future<Output = Result<Vec<User>>> + Send;
    /// Removes the user and everything issued to them (sessions, grants).
    fn remove_user(&self, username: &Username) -> impl Future<Output = Result<()>> + Send;
    /// Replaces the password hash and ends the user's sessions (ASVS 7.4.3).
    fn set_password(
        &self,
        username: &Username,
        password_hash: &PasswordHash,
    ) -> impl Future<Output = Result<()>> + Send;
    fn set_user_disabled(
        &self,
        username: &Username,
        disabled: bool,
    ) -> impl Future<Output = Result<()>> + Send;

    // Clients and APIs.
    fn create_client(
        &self,
        client: &Client,
        now: UnixTime,
    ) -> impl Future<Output = Result<()>> + Send;
    fn client(&self, id: &ClientId) -> impl Future<Output = Result<Option<Client>>> + Send;
    fn list_clients(&self) -> impl Future<Output = Result<Vec<Client>>> + Send;
    fn remove_client(&self, id: &ClientId) -> impl Future<Output = Result<()>> + Send;
    fn create_api(&self, api: &Api, now: UnixTime) -> impl Future<Output = Result<()>> + Send;
    fn api(&self, identifier: &Audience) -> impl Future<Output = Result<Option<Api>>> + Send;
    fn list_apis(&self) -> impl Future<Output = Result<Vec<Api>>> + Send;
    fn remove_api(&self, identifier: &Audience) -> impl Future<Output = Result<()>> + Send;

    // Signing keys.
    fn signing_keys(&self) -> impl Future<Output = Result<Vec<StoredKey>>> + Send;
    fn insert_key(&self, key: &StoredKey) -> impl Future<Output = Result<()>> + Send;
    /// Promotes `next` to active, retires the active key until `retire_until`, and inserts
    /// `new_next`, atomically.
    fn rotate_keys(
        &self,
        new_next: &StoredKey,
        retire_until: UnixTime,
    ) -> impl Future<Output = Result<()>> + Send;

    // Browser sessions and login transactions.
    fn create_session(&self, s: &Session) -> impl Future<Output = Result<()>> + Send;
    fn session(
        &self,
        id_hash: &SecretHash<kind::SessionToken>,
        now: UnixTime,
    ) -> impl Future<Output = Result<Option<Session>>> + Send;
    fn delete_session(
        &self,
        id_hash: &SecretHash<kind::SessionToken>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn create_txn(&self, t: &AuthTxn) -> impl Future<Output = Result<()>> + Send;
    fn txn(
        &self,
        id_hash: &SecretHash<kind::TransactionId>,
        now: UnixTime,
    ) -> impl Future<Output = Result<Option<AuthTxn>>> + Send;
    fn set_txn_authenticated(
        &self,
        id_hash: &SecretHash<kind::TransactionId>,
        user_id: &UserId,
    ) -> impl Future<Output = Result<()>> + Send;
    fn delete_txn(
        &self,
        id_hash: &SecretHash<kind::TransactionId>,
    ) -> impl Future<Output = Result<()>> + Send;

    // Consent.
    fn consent(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
    ) -> impl Future<Output = Result<Option<ScopeSet>>> + Send;
    fn record_consent(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
        scope: &ScopeSet,
    ) -> impl Future<Output = Result<()>> + Send;

    // Codes, refresh tokens, grants.
    /// Creates the grant and its code together.
    fn issue_code(&self, code: &Code) -> impl Future<Output = Result<()>> + Send;
    fn code(
        &self,
        hash: &SecretHash<kind::AuthorizationCode>,
    ) -> impl Future<Output = Result<Option<Code>>> + Send;
    /// Marks the code used and writes what it was exchanged for, once (RFC 6749 §4.1.2).
    fn redeem_code(
        &self,
        hash: &SecretHash<kind::AuthorizationCode>,
        refresh: Option<&NewRefreshToken>,
        access: &AccessTokenRecord,
    ) -> impl Future<Output = Result<Redeemed>> + Send;
    fn refresh_token(
        &self,
        hash: &SecretHash<kind::RefreshToken>,
    ) -> impl Future<Output = Result<Option<StoredRefreshToken>>> + Send;
    /// Marks the old token used and inserts the new one, once (RFC 9700 §4.14.2).
    fn rotate_refresh_token(
        &self,
        old: &SecretHash<kind::RefreshToken>,
        new: &NewRefreshToken,
        access: &AccessTokenRecord,
    ) -> impl Future<Output = Result<Redeemed>> + Send;
    /// Revokes a grant: its refresh tokens and access tokens stop working.
    fn revoke_grant(&self, grant_id: &GrantId) -> impl Future<Output = Result<()>> + Send;
    /// Records a revoked access token until `expires_at` (RFC 7009).
    fn revoke_access_token(
        &self,
        jti: &Jti,
        expires_at: UnixTime,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Whether an access token was revoked: by `jti`, through `grant` (the grant it was issued
    /// from, if any) being revoked or gone, or through `user` (its subject, when asked) being
    /// disabled or removed. A grant stays stored while any access token issued from it may
    /// still be unexpired (see [`AccessTokenRecord`]). One query, for introspection's sake.
    fn access_token_revoked(
        &self,
        jti: &Jti,
        grant: Option<&GrantId>,
        user: Option<&UserId>,
    ) -> impl Future<Output = Result<bool>> + Send;

    // Login throttling, shared by every node.
    /// Seconds until either key may try to log in again (0 when neither is locked).
    fn login_lock(
        &self,
        account_key: &ThrottleKey,
        ip_key: &ThrottleKey,
        now: UnixTime,
    ) -> impl Future<Output = Result<i64>> + Send;
    /// Counts one failure for `key` atomically, then locks it for `policy(failures)` seconds.
    fn record_login_failure(
        &self,
        key: &ThrottleKey,
        now: UnixTime,
        policy: fn(i64) -> i64,
    ) -> impl Future<Output = Result<()>> + Send;
    fn clear_login_failures(&self, key: &ThrottleKey) -> impl Future<Output = Result<()>> + Send;

    /// Deletes expired rows in bounded batches; returns how many went.
    fn purge_expired(&self, now: UnixTime) -> impl Future<Output = Result<u64>> + Send;
}
