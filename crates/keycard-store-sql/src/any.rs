//! [`AnyStore`]: either backend behind one type, chosen at run time by URL.
//!
//! The CLI and the test kit (which runs the same black-box suite on both backends) hold one of
//! these, so generic code (`App<S: Store>`) is compiled once; each operation is a `match` over
//! the backend it holds.

use keycard_protocol::policy::{Api, Client};
use keycard_protocol::{
    Audience, ClientId, GrantId, Jti, Kid, ScopeSet, SecretHash, UnixTime, UserId, Username, kind,
};
use keycard_store::*;

use crate::{PgStore, SqliteStore};

/// SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Writes each `Store` method as a `match` over the two backends.
macro_rules! delegate {
    ($( fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )*) => {
        impl Store for AnyStore {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        AnyStore::Sqlite(s) => s.$name($($arg),*).await,
                        AnyStore::Postgres(s) => s.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

delegate! {
    fn ping(&self) -> Result<()>;
    fn create_user(&self, user: &User) -> Result<()>;
    fn user_by_username(&self, username: &Username) -> Result<Option<User>>;
    fn user_by_id(&self, id: &UserId) -> Result<Option<User>>;
    fn list_users(&self) -> Result<Vec<User>>;
    fn remove_user(&self, username: &Username, r: Revocation) -> Result<()>;
    fn set_password(&self, username: &Username, password_hash: &PasswordHash, r: Revocation) -> Result<()>;
    fn set_user_disabled(&self, username: &Username, disabled: bool, r: Revocation) -> Result<()>;
    fn create_client(&self, client: &Client, now: UnixTime) -> Result<()>;
    fn client(&self, id: &ClientId) -> Result<Option<Client>>;
    fn list_clients(&self) -> Result<Vec<Client>>;
    fn remove_client(&self, id: &ClientId, r: Revocation) -> Result<()>;
    fn create_api(&self, api: &Api, now: UnixTime) -> Result<()>;
    fn api(&self, identifier: &Audience) -> Result<Option<Api>>;
    fn list_apis(&self) -> Result<Vec<Api>>;
    fn remove_api(&self, identifier: &Audience) -> Result<()>;
    fn signing_keys(&self) -> Result<Vec<StoredKey>>;
    fn insert_key(&self, key: &StoredKey) -> Result<()>;
    fn rotate_keys(&self, new_next: &StoredKey, retire_until: UnixTime, due_after: Option<i64>, r: Revocation) -> Result<bool>;
    fn revoke_key(&self, kid: &Kid, replacement: &StoredKey, r: Revocation) -> Result<()>;
    fn create_session(&self, s: &Session) -> Result<()>;
    fn session(&self, id_hash: &SecretHash<kind::SessionToken>, now: UnixTime) -> Result<Option<Session>>;
    fn delete_session(&self, id_hash: &SecretHash<kind::SessionToken>) -> Result<()>;
    fn end_session(&self, id_hash: &SecretHash<kind::SessionToken>, r: Revocation) -> Result<Option<Session>>;
    fn end_expired_sessions(&self, r: Revocation, limit: u32) -> Result<u64>;
    fn create_txn(&self, t: &AuthTxn) -> Result<()>;
    fn txn(&self, id_hash: &SecretHash<kind::TransactionId>, now: UnixTime) -> Result<Option<AuthTxn>>;
    fn set_txn_authenticated(&self, id_hash: &SecretHash<kind::TransactionId>, user_id: &UserId) -> Result<()>;
    fn delete_txn(&self, id_hash: &SecretHash<kind::TransactionId>) -> Result<()>;
    fn consent(&self, user_id: &UserId, client_id: &ClientId, audience: Option<&Audience>) -> Result<Option<ScopeSet>>;
    fn record_consent(&self, user_id: &UserId, client_id: &ClientId, audience: Option<&Audience>, scope: &ScopeSet) -> Result<()>;
    fn issue_code(&self, code: &Code) -> Result<()>;
    fn code(&self, hash: &SecretHash<kind::AuthorizationCode>) -> Result<Option<Code>>;
    fn redeem_code(&self, hash: &SecretHash<kind::AuthorizationCode>, refresh: Option<&NewRefreshToken>, access: &AccessTokenRecord) -> Result<Redeemed>;
    fn refresh_token(&self, hash: &SecretHash<kind::RefreshToken>) -> Result<Option<StoredRefreshToken>>;
    fn rotate_refresh_token(&self, old: &SecretHash<kind::RefreshToken>, new: &NewRefreshToken, access: &AccessTokenRecord) -> Result<Redeemed>;
    fn revoke_grant(&self, grant_id: &GrantId, r: Revocation) -> Result<()>;
    fn revoke_access_token(&self, jti: &Jti, r: Revocation) -> Result<()>;
    fn access_token_revoked(&self, q: &RevocationQuery<'_>) -> Result<bool>;
    fn revocations_since(&self, since: u64, limit: u32) -> Result<RevocationLog>;
    fn reserve_login_attempt(&self, rules: &[ThrottleRule], now: UnixTime) -> Result<Option<i64>>;
    fn clear_login_failures(&self, key: &ThrottleKey) -> Result<()>;
    fn refund_login_attempt(&self, keys: &[ThrottleKey]) -> Result<()>;
    fn create_device_authorization(&self, d: &DeviceAuthorization) -> Result<()>;
    fn device_authorization(&self, user_code: &SecretHash<kind::UserCode>, now: UnixTime) -> Result<Option<DeviceAuthorization>>;
    fn decide_device_authorization(&self, user_code: &SecretHash<kind::UserCode>, decision: DeviceDecision<'_>, now: UnixTime) -> Result<bool>;
    fn poll_device_code(&self, hash: &SecretHash<kind::DeviceCode>, client_id: &ClientId, now: UnixTime) -> Result<Option<DevicePoll>>;
    fn redeem_device_code(&self, hash: &SecretHash<kind::DeviceCode>, refresh: Option<&NewRefreshToken>, access: &AccessTokenRecord) -> Result<Redeemed>;
    fn due_logout_deliveries(&self, now: UnixTime, limit: u32) -> Result<Vec<LogoutDelivery>>;
    fn claim_logout_delivery(&self, id: &str, now: UnixTime, lease_until: UnixTime) -> Result<bool>;
    fn finish_logout_delivery(&self, id: &str, outcome: &DeliveryOutcome) -> Result<()>;
    fn list_logout_deliveries(&self, limit: u32) -> Result<Vec<LogoutDelivery>>;
    fn purge_expired(&self, now: UnixTime) -> Result<u64>;
}
