//! The SQLite backend (embedded, the default).
//!
//! Writes go through a pool of exactly one connection, so SQLite's single writer never sees lock
//! contention between our own connections (no `SQLITE_BUSY` storms); reads use a separate
//! read-only pool and, thanks to WAL, never wait for the writer. Transactions start with
//! `BEGIN IMMEDIATE`. `synchronous = FULL`: an answered rotation survives power loss.

use std::path::Path;
use std::time::Duration;

use keycard_protocol::authorize::AuthorizeRequest;
use keycard_protocol::policy::{Api, Client, GrantType};
use keycard_protocol::redirect::RedirectUri;
use keycard_protocol::{ClientId, ScopeSet, TokenHash, UnixTime};
use keycard_store::*;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::{corrupt, unavailable};

type Db = sqlx::Sqlite;
type DbRow = sqlx::sqlite::SqliteRow;
const BEGIN: &str = "BEGIN IMMEDIATE";

/// A SQLite-backed store.
#[derive(Clone, Debug)]
pub struct SqlStore {
    writer: sqlx::Pool<Db>,
    reader: sqlx::Pool<Db>,
}

/// The public name of the SQLite store.
pub type SqliteStore = SqlStore;

impl SqlStore {
    /// Opens (creating if needed) the database at `path` and applies migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts.clone())
            .await
            .map_err(unavailable)?;
        crate::migrator(crate::Backend::Sqlite)
            .run(&writer)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts.read_only(true))
            .await
            .map_err(unavailable)?;
        Ok(SqlStore { writer, reader })
    }

    /// Opens from a `sqlite://path` URL (or a bare path).
    pub async fn open_url(url: &str) -> Result<Self> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let path = path.split('?').next().unwrap_or(path);
        Self::open(Path::new(path)).await
    }
}

include!("common.rs");

#[cfg(test)]
mod tests {
    async fn fresh() -> Option<super::SqlStore> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        // The directory must outlive the store; leaking it in a test is the simplest way.
        std::mem::forget(dir);
        Some(super::SqlStore::open(&path).await.unwrap())
    }

    keycard_store::store_conformance_tests!(fresh);
}
