//! The PostgreSQL backend: several stateless Keycard nodes share one database.
//!
//! One pool serves reads and writes. Transactions use the default READ COMMITTED isolation:
//! the single-use `UPDATE … WHERE used = FALSE` takes the row lock, and a concurrent redeemer
//! re-checks the condition after the winner commits, so exactly one wins. A redemption (code
//! or refresh rotation) is one statement, one round trip. Connections time out
//! fast (acquire 3 s, statement 5 s) so an outage answers 503 quickly instead of hanging, and
//! the pool reconnects by itself when the database returns.

use std::time::Duration;

use keycard_protocol::authorize::AuthorizeRequest;
use keycard_protocol::pkce::CodeChallenge;
use keycard_protocol::policy::{Api, BackchannelLogout, Client, GrantType};
use keycard_protocol::redirect::RedirectUri;
use keycard_protocol::revocation::{RevocationEvent, RevocationKind};
use keycard_protocol::{
    Audience, ClientId, GrantId, Jti, Kid, LoginHint, MaxAge, Nonce, OAuthError, Prompt, ScopeSet,
    SecretHash, SecretKind, SessionId, State, UnixTime, UserId, Username, kind,
};
use keycard_store::*;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::{corrupt, unavailable};

mod hot;

/// Dedicated connections for the hot path (`hot`), beside the pool's 16.
const HOT_CONNECTIONS: usize = 8;

type Db = sqlx::Postgres;
type DbRow = sqlx::postgres::PgRow;
type DbConn = sqlx::PgConnection;

/// A PostgreSQL-backed store.
#[derive(Clone, Debug)]
pub struct SqlStore {
    writer: sqlx::Pool<Db>,
    reader: sqlx::Pool<Db>,
    /// Where the janitor's orphan-grant sweep continues.
    grant_cursor: std::sync::Arc<std::sync::Mutex<String>>,
    /// The refresh read, the revocation check and redemptions (`hot`).
    hot: std::sync::Arc<hot::HotConnections>,
}

/// The public name of the PostgreSQL store.
pub type PgStore = SqlStore;

impl SqlStore {
    /// Connects to `url` and, when `migrate` is set, applies migrations.
    pub async fn connect(url: &str, migrate: bool) -> Result<Self> {
        let opts: PgConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| StoreError::Unavailable(e.to_string()))?;
        Self::connect_with(opts, migrate).await
    }

    /// Connects with explicit options (tests use them to pick a schema).
    pub async fn connect_with(opts: PgConnectOptions, migrate: bool) -> Result<Self> {
        let opts = opts.options([("statement_timeout", "5000")]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(opts.clone())
            .await
            .map_err(unavailable)?;
        if migrate {
            crate::migrator(crate::Backend::Postgres)
                .run(&pool)
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            run_fixups(&pool).await?;
        }
        Ok(SqlStore {
            writer: pool.clone(),
            reader: pool,
            grant_cursor: Default::default(),
            hot: std::sync::Arc::new(hot::HotConnections::new(opts, HOT_CONNECTIONS)),
        })
    }

    /// Creates a schema (tests give each server its own). The name must be an identifier.
    pub async fn create_schema(&self, name: &str) -> Result<()> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(StoreError::Corrupt(format!("bad schema name {name:?}")));
        }
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

impl SqlStore {
    async fn read_refresh_token(
        &self,
        hash: &SecretHash<kind::RefreshToken>,
    ) -> Result<Option<StoredRefreshToken>> {
        let mut hot = self.hot.get().await?;
        let query = sqlx::query(SQL_REFRESH_TOKEN)
            .bind(hash.as_bytes())
            .fetch_optional(hot.conn()?);
        let answered = tokio::time::timeout(hot::QUERY, query).await;
        let row = hot.outcome(answered)?;
        row.as_ref().map(refresh_token_from).transpose()
    }

    async fn read_access_token_revoked(&self, q: &RevocationQuery<'_>) -> Result<bool> {
        let mut hot = self.hot.get().await?;
        let query = sqlx::query_scalar(SQL_ACCESS_TOKEN_REVOKED)
            .bind(q.jti.as_str())
            .bind(q.grant.map(GrantId::as_str))
            .bind(q.user.map(UserId::as_str))
            .bind(q.client.as_str())
            .bind(q.iat.secs())
            .fetch_optional(hot.conn()?);
        let answered = tokio::time::timeout(hot::QUERY, query).await;
        let revoked: Option<bool> = hot.outcome(answered)?;
        Ok(revoked.unwrap_or(false))
    }

    /// One statement per redemption (see [`redemption_sql`]): one round trip, committed as
    /// PostgreSQL commits any single statement, and grouped with its neighbours' commits by
    /// PostgreSQL itself.
    async fn single_use(&self, op: SingleUse) -> Result<Redeemed> {
        let Redemption {
            mark,
            hash,
            insert: refresh,
            access,
        } = op.parts();
        let mut hot = self.hot.get().await?;
        let query = sqlx::query_scalar(redemption_statement(mark))
            .bind(hash)
            .bind(refresh.map(|r| r.hash.as_bytes()))
            .bind(refresh.map(|r| r.grant_id.as_str()))
            .bind(refresh.map(|r| r.scope.to_wire()))
            .bind(refresh.map(|r| r.expires_at.secs()))
            .bind(access.expires_at.secs())
            .bind(access.grant_id.as_str())
            .bind(access.outlives(refresh))
            .fetch_one(hot.conn()?);
        let answered = tokio::time::timeout(hot::QUERY, query).await;
        let marked: i64 = hot.outcome(answered)?;
        Ok(if marked == 1 {
            Redeemed::Won
        } else {
            Redeemed::AlreadyUsed
        })
    }
}

/// A redemption as one statement: the shared mark (`… WHERE used = FALSE`, whose row lock and
/// re-check after a concurrent winner commits let exactly one redeemer mark the row), then the
/// new refresh token's insert and the grant's extension, both joined to what was marked, so a
/// loser writes nothing. A single statement is atomic on its own; this saves the four round
/// trips of BEGIN, two more statements and COMMIT on the hot path of every refresh.
/// Parameters: $1 the used hash; $2–$5 the new refresh token (hash, grant, scope, expiry; NULL
/// for a code redeemed without one); $6, $7 the access token's expiry and grant; $8 whether
/// the grant must be kept longer for it.
fn redemption_sql(mark: &str) -> String {
    format!(
        "WITH marked AS ({mark} RETURNING 1), \
         ins AS (INSERT INTO refresh_tokens (hash, grant_id, scope, expires_at, used) \
                 SELECT $2, $3, $4, $5, FALSE FROM marked WHERE $2 IS NOT NULL), \
         ext AS (UPDATE grants SET tokens_until = $6 \
                 WHERE id = $7 AND tokens_until < $6 AND $8 AND EXISTS (SELECT 1 FROM marked)) \
         SELECT count(*) FROM marked"
    )
}

/// The one statement for a redemption with this mark, built once.
fn redemption_statement(mark: &'static str) -> &'static str {
    use std::sync::LazyLock;
    static CODE: LazyLock<String> = LazyLock::new(|| redemption_sql(SQL_MARK_CODE));
    static REFRESH: LazyLock<String> = LazyLock::new(|| redemption_sql(SQL_MARK_REFRESH));
    if mark == SQL_MARK_CODE {
        &CODE
    } else {
        &REFRESH
    }
}

include!("common/rows.rs");
include!("common/store.rs");
include!("common/single_use.rs");
include!("common/revocations.rs");
include!("common/throttle.rs");
include!("common/purge.rs");
include!("common/deliveries.rs");
include!("common/device.rs");
include!("common/keys.rs");
include!("common/fixups.rs");

#[cfg(test)]
mod tests {
    /// A store in a fresh schema of the database named by `KEYCARD_TEST_PG_URL`, so parallel
    /// tests and runs never see each other's rows.
    async fn fresh() -> Option<super::SqlStore> {
        let url = std::env::var("KEYCARD_TEST_PG_URL").ok()?;
        let schema = format!(
            "kc_test_{}",
            keycard_protocol::TransactionId::parse(&format!(
                "{:?}{}",
                std::time::Instant::now(),
                std::process::id()
            ))
            .expect("a non-empty name")
            .hash()
            .as_bytes()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
        );
        let admin = sqlx::PgPool::connect(&url).await.expect("connect");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .expect("schema");
        admin.close().await;
        let opts: sqlx::postgres::PgConnectOptions = url.parse().expect("url");
        Some(
            super::SqlStore::connect_with(opts.options([("search_path", schema.as_str())]), true)
                .await
                .expect("store"),
        )
    }

    keycard_store::store_conformance_tests!(fresh);
}
