//! The hot path's own connections: the refresh-token read, an access token's revocation check
//! and the single-use redemption run on a few dedicated connections instead of through the
//! sqlx pool.
//!
//! Why: every use of the pool spawns a task to give the connection back
//! (`PoolConnection::drop`) and goes through its semaphore and idle queue, so each hot query
//! cost a task, its wake-ups and their context switches on top of the round trip (see
//! bench/RESULTS.md for what taking them out saved on refresh). Here each connection sits
//! behind its own async mutex: a caller takes the first free one, or waits in turn for one (at
//! most [`ACQUIRE`], the pool's own bound); each query is bounded by [`QUERY`]. A connection
//! that fails is dropped, and the next
//! caller opens a new one, so an outage heals as the pool's connections do. Connections open
//! on first use. A caller that gives up halfway (its request was dropped) leaves the
//! connection to sqlx, which finishes reading the abandoned answer before the next query; the
//! hot statements are single statements, so no transaction is ever left open.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use keycard_store::{Result, StoreError};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::{Mutex, MutexGuard};

/// How long a caller waits for a connection, or for a new one to open.
const ACQUIRE: Duration = Duration::from_secs(3);

/// How long one hot query may take end to end: past the server's 5 s `statement_timeout`, so
/// this only fires when the server cannot answer at all (a dead network).
pub(super) const QUERY: Duration = Duration::from_secs(6);

/// A few dedicated connections.
pub(super) struct HotConnections {
    conns: Vec<Mutex<Option<PgConnection>>>,
    next: AtomicUsize,
    opts: PgConnectOptions,
}

impl std::fmt::Debug for HotConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotConnections")
            .field("size", &self.conns.len())
            .finish_non_exhaustive()
    }
}

/// One connection, held until dropped.
pub(super) struct Hot<'a>(MutexGuard<'a, Option<PgConnection>>);

fn timed_out() -> StoreError {
    StoreError::Unavailable("timed out waiting for a database connection".into())
}

impl HotConnections {
    pub(super) fn new(opts: PgConnectOptions, size: usize) -> HotConnections {
        HotConnections {
            conns: (0..size.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            opts,
        }
    }

    /// A connection: the first free one, else the next in turn once it is free.
    pub(super) async fn get(&self) -> Result<Hot<'_>> {
        let guard = match self.conns.iter().find_map(|m| m.try_lock().ok()) {
            Some(g) => g,
            None => {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
                tokio::time::timeout(ACQUIRE, self.conns[i].lock())
                    .await
                    .map_err(|_| timed_out())?
            }
        };
        let mut hot = Hot(guard);
        if hot.0.is_none() {
            let conn = tokio::time::timeout(ACQUIRE, PgConnection::connect_with(&self.opts))
                .await
                .map_err(|_| timed_out())?
                .map_err(crate::unavailable)?;
            *hot.0 = Some(conn);
        }
        Ok(hot)
    }
}

impl Hot<'_> {
    pub(super) fn conn(&mut self) -> Result<&mut PgConnection> {
        self.0
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("no database connection".into()))
    }

    /// The outcome of one query run under [`QUERY`]. A database's own error (a constraint, a
    /// statement timeout) leaves the connection usable; anything else, or no answer in time,
    /// may have left it mid-conversation, so it is dropped and the next caller opens another.
    pub(super) fn outcome<T>(
        &mut self,
        r: std::result::Result<std::result::Result<T, sqlx::Error>, tokio::time::error::Elapsed>,
    ) -> Result<T> {
        match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if !matches!(e, sqlx::Error::Database(_)) {
                    *self.0 = None;
                }
                Err(crate::unavailable(e))
            }
            Err(_) => {
                *self.0 = None;
                Err(StoreError::Unavailable(
                    "the database did not answer in time".into(),
                ))
            }
        }
    }
}
