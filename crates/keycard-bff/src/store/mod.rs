//! The session store: the [`BffStore`] trait, its records, and the conformance suite every
//! backend passes ([`conformance`]).
//!
//! Methods are named after what the BFF does (create a session, take a login, end the sessions
//! a logout token names, refresh under a lock), each one atomic. Only hashes of the cookie
//! values cross the trait ([`SessionHash`], [`LoginHash`]); tokens and login secrets cross it
//! sealed (`seal`), so the store never holds a readable token. Time is a parameter.
//!
//! [`BffStore::refresh_session`] is the single flight across processes: it locks the session's
//! row (PostgreSQL `SELECT … FOR UPDATE`, SQLite `BEGIN IMMEDIATE`), re-reads it, lets the
//! caller decide on that fresh copy (keep it, replace its tokens, or end it) and commits. A
//! second instance that waited for the lock therefore sees the first one's new tokens and
//! refreshes nothing.
//!
//! The trait uses boxed futures so that [`crate::Bff`] holds an `Arc<dyn BffStore>` and is not
//! generic. Not here: SQL (`sql`), sealing (`seal`), the refresh request itself (`session`).

use std::future::Future;
use std::pin::Pin;

use keycard_protocol::{Issuer, Jti, SecretHash, SecretKind, SessionId, Subject, UnixTime};

pub mod conformance;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub mod sql;

/// A boxed `Send` future: the store's methods return these, so the trait is object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The BFF session cookie's value: 256 random bits (base64url), never stored.
#[derive(Debug)]
pub enum BffSessionKind {}

impl SecretKind for BffSessionKind {
    const NAME: &'static str = "BffSessionId";
    const MAX_LEN: usize = 64;
}

/// The BFF login-state cookie's value: 256 random bits, never stored.
#[derive(Debug)]
pub enum BffLoginKind {}

impl SecretKind for BffLoginKind {
    const NAME: &'static str = "BffLoginId";
    const MAX_LEN: usize = 64;
}

/// The SHA-256 of a session cookie: a session's key in the store.
pub type SessionHash = SecretHash<BffSessionKind>;
/// The SHA-256 of a login-state cookie: a pending login's key in the store.
pub type LoginHash = SecretHash<BffLoginKind>;

/// Why a store operation failed. No driver types cross the trait.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BffStoreError {
    /// The database could not be reached or refused the operation.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// A row could not be read back as a record.
    #[error("session store data is corrupt: {0}")]
    Corrupt(String),
    /// A row with this key exists already.
    #[error("session already exists")]
    Conflict,
}

/// What the store answers with.
pub type Result<T> = std::result::Result<T, BffStoreError>;

/// The user facts shown by `/bff/session`, from the id token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    pub name: Option<String>,
    pub email: Option<String>,
}

/// A session as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: SessionHash,
    /// The provider that signed the user in.
    pub issuer: Issuer,
    pub sub: Subject,
    /// The provider's session (`sid` in the id token), when it sends one: back-channel logout
    /// and the revocation feed name sessions by it.
    pub sid: Option<SessionId>,
    pub profile: Profile,
    /// The access, refresh and id tokens, sealed with the session id hash as associated data.
    pub tokens: Vec<u8>,
    /// Counts token replacements, so a caller can tell whether the tokens it used are still the
    /// current ones (a refresh after an upstream 401 happens only then).
    pub generation: i64,
    /// When the access token expires.
    pub access_expires_at: UnixTime,
    pub created_at: UnixTime,
    /// The session ends at this time unless it is used before (idle timeout).
    pub idle_expires_at: UnixTime,
    /// The session ends at this time whatever happens (absolute timeout).
    pub expires_at: UnixTime,
}

impl SessionRecord {
    /// Whether the session is over at `now` (idle or absolute timeout).
    pub fn is_expired(&self, now: UnixTime) -> bool {
        now >= self.expires_at || now >= self.idle_expires_at
    }
}

/// New tokens for a session, after a refresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenUpdate {
    pub tokens: Vec<u8>,
    pub access_expires_at: UnixTime,
}

/// What the caller of [`BffStore::refresh_session`] decided on the locked, re-read session.
#[derive(Debug)]
pub enum RefreshDecision {
    /// Nothing to write: someone else refreshed already, or the refresh failed for a reason
    /// that does not end the session (a network error).
    Keep,
    /// Store these tokens and count one more generation.
    Replace(TokenUpdate),
    /// The provider refused the refresh token (`invalid_grant`): delete the session.
    End,
}

/// The caller's decision on the locked session: runs while the row is locked.
pub type DecideFn<'a> =
    Box<dyn FnOnce(SessionRecord) -> BoxFuture<'a, RefreshDecision> + Send + 'a>;

/// A pending login, sealed, keyed by its cookie's hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginRecord {
    pub id: LoginHash,
    /// State, nonce, PKCE verifier and return_to, sealed with the login id hash as associated
    /// data.
    pub sealed: Vec<u8>,
    pub expires_at: UnixTime,
}

/// Persistence for the BFF. Each method is one atomic operation.
pub trait BffStore: Send + Sync + 'static {
    /// Stores a new session.
    fn create_session<'a>(&'a self, s: &'a SessionRecord) -> BoxFuture<'a, Result<()>>;

    /// The session with this id, unless it has expired at `now`.
    fn session<'a>(
        &'a self,
        id: &'a SessionHash,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>>>;

    /// Moves the idle timeout of a live session.
    fn touch_session<'a>(
        &'a self,
        id: &'a SessionHash,
        idle_expires_at: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;

    /// Deletes a session and returns it, so its refresh token can be revoked.
    fn delete_session<'a>(
        &'a self,
        id: &'a SessionHash,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>>>;

    /// Deletes every session of `issuer` matching `sub` and `sid` (each, when given; at least
    /// one is given) and returns how many ended (OIDC Back-Channel Logout 1.0 §2.7).
    fn end_sessions<'a>(
        &'a self,
        issuer: &'a Issuer,
        sub: Option<&'a Subject>,
        sid: Option<&'a SessionId>,
    ) -> BoxFuture<'a, Result<u64>>;

    /// Locks the session, re-reads it and applies the caller's decision on that copy, in one
    /// transaction; `None` when the session is gone (expired at `now`, deleted, or ended by
    /// this decision), else the session as it is afterwards.
    fn refresh_session<'a>(
        &'a self,
        id: &'a SessionHash,
        now: UnixTime,
        decide: DecideFn<'a>,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>>>;

    /// Stores a pending login.
    fn put_login<'a>(&'a self, login: &'a LoginRecord) -> BoxFuture<'a, Result<()>>;

    /// Removes and returns a pending login, once: a second call, or one after it expired at
    /// `now`, gets `None`.
    fn take_login<'a>(
        &'a self,
        id: &'a LoginHash,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<LoginRecord>>>;

    /// Records a logout token's `jti` until `expires_at`; `false` when it was already recorded
    /// (a replay, §2.6 item 7).
    fn record_logout_jti<'a>(
        &'a self,
        issuer: &'a Issuer,
        jti: &'a Jti,
        expires_at: UnixTime,
    ) -> BoxFuture<'a, Result<bool>>;

    /// Deletes expired sessions, logins and logout-token ids; returns how many rows went.
    fn purge_expired(&self, now: UnixTime) -> BoxFuture<'_, Result<u64>>;
}
