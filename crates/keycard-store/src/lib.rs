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

use std::future::Future;

use keycard_protocol::policy::{Api, Client};
use keycard_protocol::{
    Audience, ClientId, GrantId, Jti, Kid, ScopeSet, SecretHash, UnixTime, UserId, Username, kind,
};

pub mod conformance;
mod records;

pub use records::*;

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

/// Persistence for the authorization server.
///
/// Every revocation — a grant, an access token, a user disabled or removed or re-keyed, a client
/// removed, a browser session ended, a signing key revoked or published — is also appended to
/// one ordered log in the same transaction ([`Store::revocations_since`]), which the revocation
/// feed serves and [`Store::access_token_revoked`] consults. Ending a user's or a session's
/// sign-ins also queues the back-channel logout deliveries of the clients involved, in the same
/// transaction, so a restart loses none.
pub trait Store: Send + Sync + 'static {
    /// Cheap liveness check for `/readyz`.
    fn ping(&self) -> impl Future<Output = Result<()>> + Send;

    // Users. Usernames are unique and looked up by `Username::folded` (RFC 8265 §3.3).
    /// `Conflict` when the folded username, or the id as a client id, is taken.
    fn create_user(&self, user: &User) -> impl Future<Output = Result<()>> + Send;
    fn user_by_username(
        &self,
        username: &Username,
    ) -> impl Future<Output = Result<Option<User>>> + Send;
    fn user_by_id(&self, id: &UserId) -> impl Future<Output = Result<Option<User>>> + Send;
    fn list_users(&self) -> impl Future<Output = Result<Vec<User>>> + Send;
    /// Removes the user; ends their sessions, revokes their grants and tokens (a `sub` event)
    /// and queues back-channel logouts.
    fn remove_user(
        &self,
        username: &Username,
        r: Revocation,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Replaces the password hash; ends the user's sessions and revokes their grants and tokens
    /// (ASVS 7.4.3; RFC 9700 §4.14.2 names password change), queueing back-channel logouts.
    fn set_password(
        &self,
        username: &Username,
        password_hash: &PasswordHash,
        r: Revocation,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Disabling also does what a password change does; enabling revives nothing.
    fn set_user_disabled(
        &self,
        username: &Username,
        disabled: bool,
        r: Revocation,
    ) -> impl Future<Output = Result<()>> + Send;

    // Clients and APIs.
    /// `Conflict` when the id is taken, by a client or as a user id (RFC 9700 §4.15: a machine
    /// token's `sub` must never look like a user's).
    fn create_client(
        &self,
        client: &Client,
        now: UnixTime,
    ) -> impl Future<Output = Result<()>> + Send;
    fn client(&self, id: &ClientId) -> impl Future<Output = Result<Option<Client>>> + Send;
    fn list_clients(&self) -> impl Future<Output = Result<Vec<Client>>> + Send;
    /// Removes the client; its grants and every token it holds stop working (a `client` event).
    fn remove_client(
        &self,
        id: &ClientId,
        r: Revocation,
    ) -> impl Future<Output = Result<()>> + Send;
    fn create_api(&self, api: &Api, now: UnixTime) -> impl Future<Output = Result<()>> + Send;
    fn api(&self, identifier: &Audience) -> impl Future<Output = Result<Option<Api>>> + Send;
    fn list_apis(&self) -> impl Future<Output = Result<Vec<Api>>> + Send;
    fn remove_api(&self, identifier: &Audience) -> impl Future<Output = Result<()>> + Send;

    // Signing keys.
    fn signing_keys(&self) -> impl Future<Output = Result<Vec<StoredKey>>> + Send;
    fn insert_key(&self, key: &StoredKey) -> impl Future<Output = Result<()>> + Send;
    /// Promotes `next` to active (at `r.at`), retires the active key until `retire_until`, and
    /// inserts `new_next`, atomically; logs a `jwks` event naming `new_next`. With
    /// `due_after`, only when the active key has been active at least that many seconds (one
    /// of several nodes rotating on a schedule wins); returns whether it rotated.
    fn rotate_keys(
        &self,
        new_next: &StoredKey,
        retire_until: UnixTime,
        due_after: Option<i64>,
        r: Revocation,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Removes a key at once (an emergency): tokens it signed stop working (a `kid` event). If
    /// it was active, the next key becomes active; if it was active or next, `replacement`
    /// becomes the next key. `NotFound` for an unknown kid.
    fn revoke_key(
        &self,
        kid: &Kid,
        replacement: &StoredKey,
        r: Revocation,
    ) -> impl Future<Output = Result<()>> + Send;

    // Browser sessions and login transactions.
    fn create_session(&self, s: &Session) -> impl Future<Output = Result<()>> + Send;
    fn session(
        &self,
        id_hash: &SecretHash<kind::SessionToken>,
        now: UnixTime,
    ) -> impl Future<Output = Result<Option<Session>>> + Send;
    /// Replaces a session on login (fixation): deletes it, nothing else.
    fn delete_session(
        &self,
        id_hash: &SecretHash<kind::SessionToken>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Logout: deletes the session, revokes the grants made in it without `offline_access`
    /// (their refresh tokens were meant to last only as long as the session), logs a `sid`
    /// event, and queues back-channel logouts for the clients of the session. Returns the
    /// session that ended, if there was one.
    fn end_session(
        &self,
        id_hash: &SecretHash<kind::SessionToken>,
        r: Revocation,
    ) -> impl Future<Output = Result<Option<Session>>> + Send;
    /// Ends, as a logout would (`end_session`), up to `limit` sessions that expired by `r.at`:
    /// an ended sign-in reaches its clients by back-channel logout and the feed whether the
    /// user signed out or the session ran out. Returns how many ended.
    fn end_expired_sessions(
        &self,
        r: Revocation,
        limit: u32,
    ) -> impl Future<Output = Result<u64>> + Send;
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

    // Consent, per user, client and API (`None`: OpenID Connect scopes only).
    fn consent(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
        audience: Option<&Audience>,
    ) -> impl Future<Output = Result<Option<ScopeSet>>> + Send;
    fn record_consent(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
        audience: Option<&Audience>,
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
    /// Revokes a grant: its refresh tokens and access tokens stop working (a `grant` event).
    fn revoke_grant(
        &self,
        grant_id: &GrantId,
        r: Revocation,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Revokes one access token (RFC 7009; a `jti` event kept until `r.until`, its expiry).
    fn revoke_access_token(
        &self,
        jti: &Jti,
        r: Revocation,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Whether a verified access token was revoked since it was issued: its `jti`, its grant
    /// (revoked or gone: fail closed), its user (when asked: disabled or gone), its client
    /// (removed or re-created since), in one query, for introspection's sake. A grant stays
    /// stored while any access token issued from it may still be unexpired (see
    /// [`AccessTokenRecord`]).
    fn access_token_revoked(
        &self,
        q: &RevocationQuery<'_>,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// The revocation log after `since`, at most `limit` events.
    fn revocations_since(
        &self,
        since: u64,
        limit: u32,
    ) -> impl Future<Output = Result<RevocationLog>> + Send;

    // Device authorizations (RFC 8628), shared by every node.
    /// Stores a new device authorization; `Conflict` when another one holds its user code (the
    /// caller draws a new one).
    fn create_device_authorization(
        &self,
        d: &DeviceAuthorization,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The authorization with this user code, unless it has expired at `now`.
    fn device_authorization(
        &self,
        user_code: &SecretHash<kind::UserCode>,
        now: UnixTime,
    ) -> impl Future<Output = Result<Option<DeviceAuthorization>>> + Send;
    /// Records the user's answer, only while the authorization is pending and unexpired;
    /// approving creates the grant in the same transaction (kept at least until the device code
    /// expires, so the device can collect it). Returns whether the answer was recorded.
    fn decide_device_authorization(
        &self,
        user_code: &SecretHash<kind::UserCode>,
        decision: DeviceDecision<'_>,
        now: UnixTime,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// One poll by `client_id`, judged by `keycard_protocol::device::poll` and recorded (last
    /// poll, interval) in one transaction, so concurrent polls are judged one after the other
    /// and a `slow_down` holds on every node. `None` for an unknown device code.
    fn poll_device_code(
        &self,
        hash: &SecretHash<kind::DeviceCode>,
        client_id: &ClientId,
        now: UnixTime,
    ) -> impl Future<Output = Result<Option<DevicePoll>>> + Send;
    /// Marks an approved device code redeemed, unless its grant was revoked, and writes what it
    /// was exchanged for, once (one winner under concurrent polls).
    fn redeem_device_code(
        &self,
        hash: &SecretHash<kind::DeviceCode>,
        refresh: Option<&NewRefreshToken>,
        access: &AccessTokenRecord,
    ) -> impl Future<Output = Result<Redeemed>> + Send;

    // Login throttling, shared by every node.
    /// Reserves one login attempt against every rule, atomically, before the password is
    /// checked: when an applicable rule is locked, answers the seconds to wait and counts
    /// nothing; otherwise counts one failure on every rule's key (cleared on success) and locks
    /// each for `policy(failures)`. Parallel attempts cannot walk past a limit.
    fn reserve_login_attempt(
        &self,
        rules: &[ThrottleRule],
        now: UnixTime,
    ) -> impl Future<Output = Result<Option<i64>>> + Send;
    fn clear_login_failures(&self, key: &ThrottleKey) -> impl Future<Output = Result<()>> + Send;
    /// Takes back one failure that [`Store::reserve_login_attempt`] counted on each key (an
    /// attempt that turned out right, such as a valid user code), leaving earlier failures and
    /// any lock in place.
    fn refund_login_attempt(&self, keys: &[ThrottleKey])
    -> impl Future<Output = Result<()>> + Send;

    // Back-channel logout deliveries.
    /// Undelivered deliveries whose next attempt is due, oldest first.
    fn due_logout_deliveries(
        &self,
        now: UnixTime,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<LogoutDelivery>>> + Send;
    /// Takes a due delivery for one attempt: pushes its next attempt to `lease_until`, only if
    /// it is still due at `now`, so of several nodes one sends it. Returns whether this caller
    /// took it.
    fn claim_logout_delivery(
        &self,
        id: &str,
        now: UnixTime,
        lease_until: UnixTime,
    ) -> impl Future<Output = Result<bool>> + Send;
    fn finish_logout_delivery(
        &self,
        id: &str,
        outcome: &DeliveryOutcome,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The most recent deliveries, for administrators.
    fn list_logout_deliveries(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<LogoutDelivery>>> + Send;

    /// Deletes expired rows in bounded batches; returns how many went.
    fn purge_expired(&self, now: UnixTime) -> impl Future<Output = Result<u64>> + Send;
}
