//! The PostgreSQL session store: several application instances share one database.
//!
//! One pool, READ COMMITTED transactions. The refresh lock of [`BffStore::refresh_session`] is
//! the session row's lock (`SELECT … FOR UPDATE`): a second instance refreshing the same
//! session waits on it and then reads the row the first one committed. Connections are
//! acquired within 3 s; a statement may wait 15 s, longer than a refresh holding the row lock
//! may take (the provider's timeout), so waiting for a refresh never fails.

use std::time::Duration;

use keycard_protocol::{Issuer, Jti, SecretHash, SecretKind, SessionId, Subject, UnixTime};
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{Backend, corrupt, migrator, session_columns, unavailable};
use crate::store::{
    BffStore, BoxFuture, DecideFn, LoginHash, LoginRecord, Profile, RefreshDecision, Result,
    SessionHash, SessionRecord,
};

type Db = sqlx::Postgres;
type DbRow = sqlx::postgres::PgRow;

/// A PostgreSQL-backed session store.
#[derive(Clone, Debug)]
pub struct PgBffStore {
    pool: sqlx::Pool<Db>,
}

type SqlStore = PgBffStore;

/// The refresh lock: the session row's lock, held until the transaction ends.
const SELECT_SESSION_LOCKED: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM bff_sessions WHERE id_hash = $1 FOR UPDATE"
);

impl PgBffStore {
    /// Connects to `url` and migrates the database.
    pub async fn connect(url: &str) -> Result<PgBffStore> {
        let opts: PgConnectOptions = url.parse().map_err(unavailable)?;
        PgBffStore::connect_with(opts).await
    }

    /// Connects with explicit options (a test picks its schema with them) and migrates.
    pub async fn connect_with(opts: PgConnectOptions) -> Result<PgBffStore> {
        let opts = opts.options([("statement_timeout", "15000")]);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(opts)
            .await
            .map_err(unavailable)?;
        migrator(Backend::Postgres)
            .run(&pool)
            .await
            .map_err(|e| crate::store::BffStoreError::Unavailable(e.to_string()))?;
        Ok(PgBffStore { pool })
    }

    /// A write transaction; rows are locked by the statements inside it.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Db>> {
        self.pool.begin().await.map_err(unavailable)
    }
}

include!("common.rs");

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    /// A migrated store in a schema of its own (`kc_test_bff_…`, dropped by CI's clean-up).
    pub(crate) async fn store_in_new_schema(url: &str) -> PgBffStore {
        let schema = format!(
            "kc_test_bff_{}",
            keycard_os::new_id::<keycard_protocol::GrantId>()
        );
        let admin = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let opts: PgConnectOptions = url.parse().unwrap();
        PgBffStore::connect_with(opts.options([("search_path", schema.as_str())]))
            .await
            .unwrap()
    }
}
