//! The SQLite backend (embedded, the default).
//!
//! Writes other than redemptions go through a sqlx pool of exactly one connection; reads use a
//! separate read-only pool and, thanks to WAL, never wait for the writer. The hot path —
//! redemptions and the two reads every refresh or introspection makes — runs on two threads
//! with rusqlite connections of their own (below). With one sqlx writer connection a
//! plain deferred `BEGIN` cannot deadlock on a lock upgrade, so transactions use sqlx's own
//! `begin()`, whose cancellation handling is safe (a custom `begin_with` statement interrupted by
//! a dropped request could leave a pooled connection inside a transaction nobody commits).
//! `synchronous = FULL`: an answered rotation survives power loss.
//!
//! Group commit: with `synchronous = FULL` every commit waits for an fsync, and SQLite has one
//! writer, so one transaction per redemption would cap code and refresh-token redemptions at
//! the disk's fsync rate (measured: ~450/s). Redemptions therefore go to a writer thread that
//! takes every request waiting at that moment and commits them together with one fsync (if one
//! of them fails, the group is rolled back and each is retried alone). Each caller is answered
//! only after its commit, so nothing is acknowledged before it is durable.
//!
//! That thread owns its own connection through rusqlite rather than sqlx: sqlx runs each
//! statement on a worker thread of its own and every statement is a hand-off between threads,
//! which under load cost ~400 µs of waiting per statement (measured), several per group. On its
//! own thread a whole group runs without a hand-off. It is a second writer connection next to
//! sqlx's (admin writes, sessions, the janitor): SQLite serialises the two with its write lock
//! and `busy_timeout`, and every sqlx write transaction starts with a write, so none can fail on
//! a stale read snapshot.

use std::path::Path;
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
    hot_reads: tokio::sync::mpsc::UnboundedSender<HotRead>,
}

type Reply = tokio::sync::oneshot::Sender<Result<Redeemed>>;

/// Redemptions committed together at most (a bound on one transaction's size).
const MAX_GROUP: usize = 256;

/// WAL pages after which a committing writer checkpoints (SQLite's default is 1,000).
///
/// Under a refresh load the hot B-tree pages are rewritten in nearly every commit, and every
/// checkpoint copies each of them back to the database file once; checkpointing ten times less
/// often copies them ten times less often. Measured on the refresh ES256 load (fresh database,
/// two runs each): 6,800–7,000 rotations/s at 1,000 pages, 8,800–8,900/s at 10,000, with p50
/// 3.7 → 3.2 ms and p90 9.5 → 5.7 ms; a profile at 1,000 pages had put 11 % of the server's CPU
/// in checkpoints. The price: the commit that crosses the threshold copies up to ~40 MiB while
/// the redemptions behind it wait, so p99 rose from 13 to 26–28 ms; and the WAL file grows to
/// ~40 MiB on disk. A checkpoint on a thread of its own does not help: PASSIVE checkpoints
/// never catch up with a writer that commits every few hundred microseconds, so the WAL is
/// never reset and grows without bound (tried: 400 MiB in 10 s).
const WAL_AUTOCHECKPOINT_PAGES: i64 = 10_000;

/// Opens one of the hot-path connections to a database that sqlx has already migrated (so
/// the file is in WAL mode, a property of the file, and a reader never waits for the writer).
fn open_rusqlite(path: &Path, writer: bool) -> rusqlite::Result<rusqlite::Connection> {
    let access = if writer {
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
    } else {
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
    };
    let conn = rusqlite::Connection::open_with_flags(
        path,
        access | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    if writer {
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
    }
    Ok(conn)
}

/// Blocks for the next request, then takes every request already waiting behind it (at most
/// [`MAX_GROUP`]); `None` when every sender is gone. Both hot-path threads work in such batches.
fn next_batch<T>(rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>) -> Option<Vec<T>> {
    let mut batch = vec![rx.blocking_recv()?];
    while batch.len() < MAX_GROUP {
        match rx.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
    Some(batch)
}

fn group_writer(
    mut conn: rusqlite::Connection,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<(SingleUse, Reply)>,
) {
    while let Some(batch) = next_batch(&mut rx) {
        let started = std::time::Instant::now();
        let results = commit_group(&mut conn, &batch);
        tracing::debug!(
            size = batch.len(),
            micros = started.elapsed().as_micros() as u64,
            "redemption group committed"
        );
        for ((_, reply), r) in batch.into_iter().zip(results) {
            // A caller that stopped waiting (its request was dropped) needs no answer.
            let _ = reply.send(r);
        }
    }
}

/// Commits a group in one transaction. If any statement fails (a storage error, not a lost
/// race), the group is rolled back and each redemption is retried in its own transaction, so
/// one bad request never takes the others down; the fast path needs no savepoints.
fn commit_group(
    conn: &mut rusqlite::Connection,
    batch: &[(SingleUse, Reply)],
) -> Vec<Result<Redeemed>> {
    let ops: Vec<&SingleUse> = batch.iter().map(|(op, _)| op).collect();
    match in_transaction(conn, &ops) {
        Ok(results) => results.into_iter().map(Ok).collect(),
        Err(_) if ops.len() > 1 => ops
            .iter()
            .map(|op| {
                in_transaction(conn, &[op])
                    .and_then(|mut r| r.pop().ok_or(rusqlite::Error::QueryReturnedNoRows))
                    .map_err(driver_error)
            })
            .collect(),
        Err(e) => vec![Err(driver_error(e))],
    }
}

/// Applies redemptions in one `BEGIN IMMEDIATE` transaction (the write lock is taken up front,
/// so the other writer connection cannot invalidate what a statement read).
fn in_transaction(
    conn: &mut rusqlite::Connection,
    ops: &[&SingleUse],
) -> rusqlite::Result<Vec<Redeemed>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        results.push(apply_single_use(&tx, op)?);
    }
    tx.commit()?;
    Ok(results)
}

/// Applies one redemption inside the group's transaction. The `UPDATE … WHERE used = FALSE`
/// decides the one winner (also between two uses of one token in the same group: the later
/// one finds it used); a loser writes nothing.
fn apply_single_use(conn: &rusqlite::Connection, op: &SingleUse) -> rusqlite::Result<Redeemed> {
    let Redemption {
        mark,
        hash,
        insert: refresh,
        access,
    } = op.parts();
    if conn.prepare_cached(mark)?.execute([hash])? == 0 {
        return Ok(Redeemed::AlreadyUsed);
    }
    if let Some(r) = refresh {
        conn.prepare_cached(SQL_INSERT_REFRESH)?
            .execute(rusqlite::params![
                r.hash.as_bytes(),
                r.grant_id.as_str(),
                r.scope.to_wire(),
                r.expires_at.secs(),
            ])?;
    }
    if access.outlives(refresh) {
        conn.prepare_cached(SQL_EXTEND_GRANT)?
            .execute(rusqlite::params![
                access.expires_at.secs(),
                access.grant_id.as_str()
            ])?;
    }
    Ok(Redeemed::Won)
}

/// A read on the token endpoint's and introspection's hot path, answered by the reader thread.
enum HotRead {
    RefreshToken(
        SecretHash<kind::RefreshToken>,
        tokio::sync::oneshot::Sender<Result<Option<StoredRefreshToken>>>,
    ),
    AccessTokenRevoked {
        jti: Jti,
        grant: Option<GrantId>,
        user: Option<UserId>,
        client: ClientId,
        iat: UnixTime,
        reply: tokio::sync::oneshot::Sender<Result<bool>>,
    },
}

impl Columns for rusqlite::Row<'_> {
    fn text(&self, col: &str) -> Result<String> {
        self.get(col).map_err(driver_error)
    }
    fn text_opt(&self, col: &str) -> Result<Option<String>> {
        self.get(col).map_err(driver_error)
    }
    fn int(&self, col: &str) -> Result<i64> {
        self.get(col).map_err(driver_error)
    }
    fn int_opt(&self, col: &str) -> Result<Option<i64>> {
        self.get(col).map_err(driver_error)
    }
    fn flag(&self, col: &str) -> Result<bool> {
        self.get(col).map_err(driver_error)
    }
    fn bytes(&self, col: &str) -> Result<Vec<u8>> {
        self.get(col).map_err(driver_error)
    }
}

fn driver_error(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Answers hot-path reads in batches: everything waiting at that moment is read in one read
/// transaction (one snapshot, taken after each of those requests was sent, so a revocation
/// committed before a request is always seen). Through sqlx each read was a hand-off to a
/// worker thread and back plus its allocations; here a batch costs one wake-up.
fn hot_reader(
    mut conn: rusqlite::Connection,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<HotRead>,
) {
    while let Some(batch) = next_batch(&mut rx) {
        let tx = conn.transaction();
        for read in batch {
            let conn = tx
                .as_ref()
                .map_err(|e| StoreError::Unavailable(e.to_string()));
            // A caller that stopped waiting needs no answer.
            match read {
                HotRead::RefreshToken(hash, reply) => {
                    let _ = reply.send(conn.and_then(|c| read_refresh_token(c, &hash)));
                }
                HotRead::AccessTokenRevoked {
                    jti,
                    grant,
                    user,
                    client,
                    iat,
                    reply,
                } => {
                    let r = conn.and_then(|c| {
                        c.prepare_cached(SQL_ACCESS_TOKEN_REVOKED)
                            .and_then(|mut q| {
                                let params = rusqlite::params![
                                    &*jti,
                                    grant.as_deref(),
                                    user.as_deref(),
                                    &*client,
                                    iat.secs()
                                ];
                                q.query_row(params, |row| row.get(0))
                            })
                            .map_err(driver_error)
                    });
                    let _ = reply.send(r);
                }
            }
        }
        if let Ok(tx) = tx
            && let Err(e) = tx.commit()
        {
            tracing::warn!(error = %e, "ending a read transaction failed");
        }
    }
}

fn read_refresh_token(
    conn: &rusqlite::Connection,
    hash: &SecretHash<kind::RefreshToken>,
) -> Result<Option<StoredRefreshToken>> {
    use rusqlite::OptionalExtension;
    let mut q = conn
        .prepare_cached(SQL_REFRESH_TOKEN)
        .map_err(driver_error)?;
    q.query_row([hash.as_bytes()], |row| Ok(refresh_token_from(row)))
        .optional()
        .map_err(driver_error)?
        .transpose()
}

impl SqlStore {
    async fn hot_read<T>(
        &self,
        read: HotRead,
        answer: tokio::sync::oneshot::Receiver<Result<T>>,
    ) -> Result<T> {
        let stopped = || StoreError::Unavailable("the SQLite reader thread stopped".into());
        self.hot_reads.send(read).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    async fn read_refresh_token(
        &self,
        hash: &SecretHash<kind::RefreshToken>,
    ) -> Result<Option<StoredRefreshToken>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.hot_read(HotRead::RefreshToken(*hash, reply), answer)
            .await
    }

    async fn read_access_token_revoked(&self, q: &RevocationQuery<'_>) -> Result<bool> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let read = HotRead::AccessTokenRevoked {
            jti: q.jti.clone(),
            grant: q.grant.cloned(),
            user: q.user.cloned(),
            client: q.client.clone(),
            iat: q.iat,
            reply,
        };
        self.hot_read(read, answer).await
    }
}

impl SqlStore {
    async fn single_use(&self, op: SingleUse) -> Result<Redeemed> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let stopped = || StoreError::Unavailable("the SQLite group writer thread stopped".into());
        self.group.send((op, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The file a `sqlite://path` URL (or a bare path) names; query parameters are ignored.
pub fn path_of_url(url: &str) -> &Path {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    Path::new(path.split('?').next().unwrap_or(path))
}

/// Creates an empty file readable and writable by its owner only; fails if it exists.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    opts.open(path).map(drop)
}

/// The public name of the SQLite store.
pub type SqliteStore = SqlStore;

impl SqlStore {
    /// Opens (creating if needed) the database at `path` and applies migrations.
    ///
    /// A new database file is created owner-only (0600) before SQLite first opens it: it holds
    /// password hashes and emails, and SQLite gives the `-wal` and `-shm` files it creates the
    /// database file's mode, so they are owner-only too.
    pub async fn open(path: &Path) -> Result<Self> {
        match create_private(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot create {}: {e}",
                    path.display()
                )));
            }
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string())
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
        run_fixups(&writer).await?;
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
        let conn = open_rusqlite(path, true).map_err(driver_error)?;
        // The thread ends when the last handle to the store (and so the sender) is dropped.
        std::thread::Builder::new()
            .name("keycard-sqlite-group".into())
            .spawn(move || group_writer(conn, rx))
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the SQLite group writer: {e}"))
            })?;
        let (hot_reads, rx) = tokio::sync::mpsc::unbounded_channel();
        let conn = open_rusqlite(path, false).map_err(driver_error)?;
        std::thread::Builder::new()
            .name("keycard-sqlite-read".into())
            .spawn(move || hot_reader(conn, rx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the SQLite reader: {e}")))?;
        Ok(SqlStore {
            writer,
            reader,
            group,
            hot_reads,
            grant_cursor: Default::default(),
        })
    }

    /// Writes a consistent, compacted copy of the database to `path` with `VACUUM INTO`. Safe
    /// while a server runs: it reads one snapshot on a read-only connection, so writers never
    /// wait for it, and the copy includes every transaction committed before it began (the
    /// WAL's too). SQLite refuses an existing, non-empty `path`, so nothing is overwritten.
    pub async fn backup_into(&self, path: &Path) -> Result<()> {
        let target = path
            .to_str()
            .ok_or_else(|| StoreError::Unavailable("the backup path is not UTF-8".into()))?;
        // `VACUUM INTO` writes into an empty file it is given, so creating that file first
        // makes the copy owner-only (0600) like the database, and refuses an existing one.
        create_private(path).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", path.display()))
        })?;
        let copied = sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(&self.reader)
            .await;
        if let Err(e) = copied {
            let _ = std::fs::remove_file(path);
            return Err(unavailable(e));
        }
        Ok(())
    }

    /// Opens from a `sqlite://path` URL (or a bare path).
    pub async fn open_url(url: &str) -> Result<Self> {
        Self::open(path_of_url(url)).await
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
    async fn fresh() -> Option<super::SqlStore> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        // The directory must outlive the store; leaking it in a test is the simplest way.
        std::mem::forget(dir);
        Some(super::SqlStore::open(&path).await.unwrap())
    }

    keycard_store::store_conformance_tests!(fresh);

    /// Both writer connections (sqlx's and the group writer's) checkpoint at the same, larger
    /// WAL size; one left at SQLite's default would checkpoint ten times as often.
    #[tokio::test]
    async fn writers_checkpoint_every_wal_autocheckpoint_pages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = super::SqlStore::open(&path).await.unwrap();
        let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        assert_eq!(pages, super::WAL_AUTOCHECKPOINT_PAGES);
        let group = super::open_rusqlite(&path, true).unwrap();
        let pages: i64 = group
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(pages, super::WAL_AUTOCHECKPOINT_PAGES);
    }
}
