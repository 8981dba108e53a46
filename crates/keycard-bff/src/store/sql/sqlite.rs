//! The SQLite session store (embedded, the default).
//!
//! One small pool serves reads and writes; WAL lets reads go on while a write transaction is
//! open, `synchronous = FULL` makes a committed refresh survive power loss (a lost rotation
//! would end the session), and `busy_timeout` makes a writer wait for another one — in this
//! process or another process on the same file — instead of failing. Every write transaction
//! begins with `BEGIN IMMEDIATE`, which takes the database's write lock at once: the refresh
//! lock of [`BffStore::refresh_session`] is that lock, and the re-read after it sees whatever
//! the previous holder committed. sqlx rolls back a `BEGIN IMMEDIATE` whose caller went away
//! before it was acknowledged, so a dropped request cannot leave a pooled connection inside a
//! transaction.

use std::str::FromStr;
use std::time::Duration;

use keycard_protocol::{Issuer, Jti, SecretHash, SecretKind, SessionId, Subject, UnixTime};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{Backend, corrupt, migrator, session_columns, unavailable};
use crate::store::{
    BffStore, BoxFuture, DecideFn, LoginHash, LoginRecord, Profile, RefreshDecision, Result,
    SessionHash, SessionRecord,
};

type Db = sqlx::Sqlite;
type DbRow = sqlx::sqlite::SqliteRow;

/// A SQLite-backed session store.
#[derive(Clone, Debug)]
pub struct SqliteBffStore {
    pool: sqlx::Pool<Db>,
}

type SqlStore = SqliteBffStore;

/// The refresh lock's re-read: `BEGIN IMMEDIATE` already holds the database's write lock.
const SELECT_SESSION_LOCKED: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM bff_sessions WHERE id_hash = $1"
);

/// How long a writer waits for another one: longer than a refresh holding the lock may take
/// (the provider's timeout), so waiting for a refresh never fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

impl SqliteBffStore {
    /// Opens (creating it if needed) and migrates the database at `url` (`sqlite://PATH`,
    /// `sqlite:PATH?mode=rwc`, or a bare path).
    pub async fn open(url: &str) -> Result<SqliteBffStore> {
        let opts = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url).map_err(unavailable)?
        } else {
            SqliteConnectOptions::new().filename(url)
        };
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(opts)
            .await
            .map_err(unavailable)?;
        migrator(Backend::Sqlite)
            .run(&pool)
            .await
            .map_err(|e| crate::store::BffStoreError::Unavailable(e.to_string()))?;
        Ok(SqliteBffStore { pool })
    }

    /// A write transaction, holding the database's write lock from its first statement.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Db>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable)
    }
}

include!("common.rs");
