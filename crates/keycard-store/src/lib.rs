//! The `Store` trait: Keycard's persistence, named after protocol operations.
//!
//! Each method is one atomic operation, so transactions never leak out of the trait: a code is
//! redeemed (marked used, refresh token and access-token record written) in one step; a refresh
//! token is rotated in one step with exactly one winner under concurrency.
//!
//! Invariants: only hashes of codes, refresh tokens, session ids, transaction ids and client
//! secrets cross this boundary; time is always a parameter (`now`); no SQL types appear in
//! signatures. Implementations: keycard-store-sql (SQLite and PostgreSQL), which must pass
//! [`conformance`].

use std::future::Future;

use keycard_protocol::authorize::AuthorizeRequest;
use keycard_protocol::policy::{Api, Client};
use keycard_protocol::{ScopeSet, TokenHash, UnixTime};

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

/// A user account. `password_hash` is an argon2id PHC string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub disabled: bool,
    pub created_at: UnixTime,
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
    pub kid: String,
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
    pub id_hash: TokenHash,
    pub user_id: String,
    pub auth_time: UnixTime,
    /// The public session id put in id tokens (`sid`).
    pub sid: String,
    pub expires_at: UnixTime,
}

/// A pending authorization request between /authorize and the redirect back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthTxn {
    pub id_hash: TokenHash,
    pub request: AuthorizeRequest,
    /// Hash of the CSRF token bound to this transaction (double-submitted via cookie and form).
    pub csrf_hash: TokenHash,
    /// Set when the user typed the password during this transaction.
    pub authenticated_user: Option<String>,
    pub expires_at: UnixTime,
}

/// An authorization grant: the family that codes, refresh tokens and access tokens belong to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: ScopeSet,
    pub audience: Option<String>,
    pub auth_time: UnixTime,
    pub sid: Option<String>,
    pub nonce: Option<String>,
    pub created_at: UnixTime,
}

/// An authorization code as stored (RFC 6749 §4.1.2: bound to client, redirect URI and challenge).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Code {
    pub hash: TokenHash,
    pub grant: Grant,
    pub redirect_uri: String,
    pub redirect_uri_sent: bool,
    pub code_challenge: String,
    pub expires_at: UnixTime,
    pub used: bool,
}

/// A refresh token to insert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRefreshToken {
    pub hash: TokenHash,
    pub grant_id: String,
    pub scope: ScopeSet,
    pub expires_at: UnixTime,
}

/// A refresh token as loaded, with its grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshToken {
    pub hash: TokenHash,
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
    pub grant_id: String,
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
    fn user_by_username(&self, username: &str)
    -> impl Future<Output = Result<Option<User>>> + Send;
    fn user_by_id(&self, id: &str) -> impl Future<Output = Result<Option<User>>> + Send;
    fn list_users(&self) -> impl Future<Output = Result<Vec<User>>> + Send;
    /// Removes the user and everything issued to them (sessions, grants).
    fn remove_user(&self, username: &str) -> impl Future<Output = Result<()>> + Send;
    /// Replaces the password hash and ends the user's sessions (ASVS 7.4.3).
    fn set_password(
        &self,
        username: &str,
        password_hash: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
    ) -> impl Future<Output = Result<()>> + Send;

    // Clients and APIs.
    fn create_client(
        &self,
        client: &Client,
        now: UnixTime,
    ) -> impl Future<Output = Result<()>> + Send;
    fn client(&self, id: &str) -> impl Future<Output = Result<Option<Client>>> + Send;
    fn list_clients(&self) -> impl Future<Output = Result<Vec<Client>>> + Send;
    fn remove_client(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    fn create_api(&self, api: &Api, now: UnixTime) -> impl Future<Output = Result<()>> + Send;
    fn api(&self, identifier: &str) -> impl Future<Output = Result<Option<Api>>> + Send;
    fn list_apis(&self) -> impl Future<Output = Result<Vec<Api>>> + Send;
    fn remove_api(&self, identifier: &str) -> impl Future<Output = Result<()>> + Send;

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
        id_hash: &TokenHash,
        now: UnixTime,
    ) -> impl Future<Output = Result<Option<Session>>> + Send;
    fn delete_session(&self, id_hash: &TokenHash) -> impl Future<Output = Result<()>> + Send;
    fn create_txn(&self, t: &AuthTxn) -> impl Future<Output = Result<()>> + Send;
    fn txn(
        &self,
        id_hash: &TokenHash,
        now: UnixTime,
    ) -> impl Future<Output = Result<Option<AuthTxn>>> + Send;
    fn set_txn_authenticated(
        &self,
        id_hash: &TokenHash,
        user_id: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    fn delete_txn(&self, id_hash: &TokenHash) -> impl Future<Output = Result<()>> + Send;

    // Consent.
    fn consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> impl Future<Output = Result<Option<ScopeSet>>> + Send;
    fn record_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &ScopeSet,
    ) -> impl Future<Output = Result<()>> + Send;

    // Codes, refresh tokens, grants.
    /// Creates the grant and its code together.
    fn issue_code(&self, code: &Code) -> impl Future<Output = Result<()>> + Send;
    fn code(&self, hash: &TokenHash) -> impl Future<Output = Result<Option<Code>>> + Send;
    /// Marks the code used and writes what it was exchanged for, once (RFC 6749 §4.1.2).
    fn redeem_code(
        &self,
        hash: &TokenHash,
        refresh: Option<&NewRefreshToken>,
        access: &AccessTokenRecord,
    ) -> impl Future<Output = Result<Redeemed>> + Send;
    fn refresh_token(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<Option<RefreshToken>>> + Send;
    /// Marks the old token used and inserts the new one, once (RFC 9700 §4.14.2).
    fn rotate_refresh_token(
        &self,
        old: &TokenHash,
        new: &NewRefreshToken,
        access: &AccessTokenRecord,
    ) -> impl Future<Output = Result<Redeemed>> + Send;
    /// Revokes a grant: its refresh tokens and access tokens stop working.
    fn revoke_grant(&self, grant_id: &str) -> impl Future<Output = Result<()>> + Send;
    /// Records a revoked access token until `expires_at` (RFC 7009).
    fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: UnixTime,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Whether an access token was revoked: by `jti`, through `grant` (the grant it was issued
    /// from, if any) being revoked or gone, or through `user` (its subject, when asked) being
    /// disabled or removed. A grant stays stored while any access token issued from it may
    /// still be unexpired (see [`AccessTokenRecord`]). One query, for introspection's sake.
    fn access_token_revoked(
        &self,
        jti: &str,
        grant: Option<&str>,
        user: Option<&str>,
    ) -> impl Future<Output = Result<bool>> + Send;

    // Login throttling, shared by every node.
    /// Seconds until either key may try to log in again (0 when neither is locked).
    fn login_lock(
        &self,
        account_key: &str,
        ip_key: &str,
        now: UnixTime,
    ) -> impl Future<Output = Result<i64>> + Send;
    /// Counts one failure for `key` atomically, then locks it for `policy(failures)` seconds.
    fn record_login_failure(
        &self,
        key: &str,
        now: UnixTime,
        policy: fn(i64) -> i64,
    ) -> impl Future<Output = Result<()>> + Send;
    fn clear_login_failures(&self, key: &str) -> impl Future<Output = Result<()>> + Send;

    /// Deletes expired rows in bounded batches; returns how many went.
    fn purge_expired(&self, now: UnixTime) -> impl Future<Output = Result<u64>> + Send;
}
