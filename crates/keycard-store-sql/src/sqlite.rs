//! The SQLite backend (embedded, the default).
//!
//! Writes go through a pool of exactly one connection, so SQLite's single writer never sees lock
//! contention between our own connections (no `SQLITE_BUSY` storms); reads use a separate
//! read-only pool and, thanks to WAL, never wait for the writer. With one writer connection a
//! plain deferred `BEGIN` cannot deadlock on a lock upgrade, so transactions use sqlx's own
//! `begin()`, whose cancellation handling is safe (a custom `begin_with` statement interrupted by
//! a dropped request could leave a pooled connection inside a transaction nobody commits).
//! `synchronous = FULL`: an answered rotation survives power loss.
//!
//! Group commit: with `synchronous = FULL` every commit waits for an fsync, and SQLite has one
//! writer, so one transaction per redemption would cap code and refresh-token redemptions at
//! the disk's fsync rate (measured: ~450/s). Redemptions therefore go to a writer task that
//! takes every request waiting at that moment and commits them together with one fsync (if one
//! of them fails, the group is rolled back and each is retried alone). Each caller is answered
//! only after its commit, so nothing is acknowledged before it is durable.

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
type DbConn = sqlx::SqliteConnection;

/// A SQLite-backed store.
#[derive(Clone, Debug)]
pub struct SqlStore {
    writer: sqlx::Pool<Db>,
    reader: sqlx::Pool<Db>,
    /// Where the janitor's orphan-grant sweep continues.
    grant_cursor: std::sync::Arc<std::sync::Mutex<String>>,
    group: tokio::sync::mpsc::UnboundedSender<(SingleUse, Reply)>,
}

type Reply = tokio::sync::oneshot::Sender<Result<Redeemed>>;

/// Redemptions committed together at most (a bound on one transaction's size).
const MAX_GROUP: usize = 256;

async fn group_writer(
    pool: sqlx::Pool<Db>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<(SingleUse, Reply)>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        match commit_group(&pool, &batch).await {
            Ok(results) => {
                for ((_, reply), r) in batch.into_iter().zip(results) {
                    let _ = reply.send(r);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for (_, reply) in batch {
                    let _ = reply.send(Err(StoreError::Unavailable(msg.clone())));
                }
            }
        }
    }
}

/// Commits a group in one transaction. If any redemption fails (a storage error, not a lost
/// race), the group is rolled back and each redemption is retried in its own transaction, so
/// one bad request never takes the others down; the fast path needs no savepoints.
async fn commit_group(
    pool: &sqlx::Pool<Db>,
    batch: &[(SingleUse, Reply)],
) -> Result<Vec<Result<Redeemed>>> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    let mut results = Vec::with_capacity(batch.len());
    for (op, _) in batch {
        match apply_single_use(&mut tx, op).await {
            Ok(r) => results.push(Ok(r)),
            Err(_) => {
                tx.rollback().await.map_err(unavailable)?;
                return commit_one_by_one(pool, batch).await;
            }
        }
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(results)
}

async fn commit_one_by_one(
    pool: &sqlx::Pool<Db>,
    batch: &[(SingleUse, Reply)],
) -> Result<Vec<Result<Redeemed>>> {
    let mut results = Vec::with_capacity(batch.len());
    for (op, _) in batch {
        let mut tx = pool.begin().await.map_err(unavailable)?;
        match apply_single_use(&mut tx, op).await {
            Ok(r) => {
                tx.commit().await.map_err(unavailable)?;
                results.push(Ok(r));
            }
            Err(e) => {
                tx.rollback().await.map_err(unavailable)?;
                results.push(Err(e));
            }
        }
    }
    Ok(results)
}

impl SqlStore {
    async fn single_use(&self, op: SingleUse) -> Result<Redeemed> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let stopped = || StoreError::Unavailable("the SQLite writer task stopped".into());
        self.group.send((op, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
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
            // One reader per core: each connection is a thread with its own page cache, and
            // more readers than cores only add memory (WAL readers never wait for the writer).
            .max_connections(
                std::thread::available_parallelism()
                    .map(|n| n.get() as u32)
                    .unwrap_or(2),
            )
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts.read_only(true))
            .await
            .map_err(unavailable)?;
        let (group, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(group_writer(writer.clone(), rx));
        Ok(SqlStore {
            writer,
            reader,
            group,
            grant_cursor: Default::default(),
        })
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
