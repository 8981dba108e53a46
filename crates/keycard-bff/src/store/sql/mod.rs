//! The SQL session stores: SQLite (feature `sqlite`, the default) and PostgreSQL (feature
//! `postgres`), on sqlx, in the application's own database.
//!
//! Both backends share one text of SQL (`common.rs`, `include!`d by each backend module) in the
//! portable subset Keycard's server store uses — `BIGINT` unix seconds, `ON CONFLICT DO
//! NOTHING`, no `RETURNING`, no advisory locks — and differ only where SQL itself does: the
//! schema (`BLOB` vs `BYTEA`, in two migration folders whose file names must match one for
//! one, checked by a test) and how a transaction locks a session for a refresh (SQLite
//! `BEGIN IMMEDIATE`, the database's write lock, then a plain re-read; PostgreSQL `BEGIN` and
//! `SELECT … FOR UPDATE`, the row's lock). Migrations are embedded and recorded in their own
//! table, `_keycard_bff_migrations`, so they never mix with the application's.
//!
//! Entry points: [`connect`] chooses the backend by URL; [`SqliteBffStore::open`] and
//! [`PgBffStore::connect`] open one directly.
//!
//! Invariant: every write transaction on SQLite starts with `BEGIN IMMEDIATE`, so no
//! transaction ever upgrades a read lock and fails with `SQLITE_BUSY` when another process
//! writes; `busy_timeout` lets it wait instead.

use std::borrow::Cow;
use std::sync::Arc;

use sqlx::migrate::{Migration, MigrationType, Migrator};

use super::{BffStore, BffStoreError};

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "postgres")]
pub use postgres::PgBffStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteBffStore;

/// The columns of a session row, in the order `session_from` reads them; a macro so that both
/// backends' `SELECT`s are built from it with `concat!` at compile time.
macro_rules! session_columns {
    () => {
        "id_hash, issuer, sub, sid, name, email, tokens, generation, access_expires_at, \
         created_at, idle_expires_at, expires_at"
    };
}
pub(crate) use session_columns;

/// One migration: version, description, and the SQL of each backend.
struct Step {
    version: i64,
    description: &'static str,
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    sqlite: &'static str,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    postgres: &'static str,
}

/// The migrations, in order; each file is `NNNN_description.sql` in both folders.
const STEPS: &[Step] = &[Step {
    version: 1,
    description: "init",
    sqlite: include_str!("../../../migrations/sqlite/0001_init.sql"),
    postgres: include_str!("../../../migrations/postgres/0001_init.sql"),
}];

/// The table that records which migrations ran, apart from the application's own.
const MIGRATIONS_TABLE: &str = "_keycard_bff_migrations";

/// Migration names (`NNNN_description`), as the embedded list knows them.
pub fn migration_names() -> Vec<String> {
    STEPS
        .iter()
        .map(|s| format!("{:04}_{}", s.version, s.description))
        .collect()
}

#[derive(Clone, Copy)]
#[cfg_attr(not(all(feature = "sqlite", feature = "postgres")), allow(dead_code))]
enum Backend {
    Sqlite,
    Postgres,
}

fn migrator(backend: Backend) -> Migrator {
    let mut m = Migrator::with_migrations(
        STEPS
            .iter()
            .map(|s| {
                let sql = match backend {
                    Backend::Sqlite => s.sqlite,
                    Backend::Postgres => s.postgres,
                };
                Migration::new(
                    s.version,
                    Cow::Borrowed(s.description),
                    MigrationType::Simple,
                    sqlx::SqlSafeStr::into_sql_str(sql),
                    false,
                )
            })
            .collect(),
    );
    // "Dangerous" only in that two migrators must not share a table; giving ours its own is
    // exactly what keeps the application's migrations apart from the BFF's.
    m.dangerous_set_table_name(MIGRATIONS_TABLE);
    m
}

fn unavailable(e: sqlx::Error) -> BffStoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => BffStoreError::Conflict,
        _ => BffStoreError::Unavailable(e.to_string()),
    }
}

fn corrupt(what: &str) -> BffStoreError {
    BffStoreError::Corrupt(what.to_owned())
}

/// Opens the store a database URL names, migrating it: `postgres://…` or `postgresql://…`
/// for PostgreSQL, `sqlite://PATH` (or a bare path) for SQLite.
pub async fn connect(url: &str) -> Result<Arc<dyn BffStore>, BffStoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        return Ok(Arc::new(PgBffStore::connect(url).await?));
        #[cfg(not(feature = "postgres"))]
        return Err(BffStoreError::Unavailable(
            "keycard-bff was built without the postgres feature".into(),
        ));
    }
    if url.starts_with("sqlite:") || !url.contains("://") {
        #[cfg(feature = "sqlite")]
        return Ok(Arc::new(SqliteBffStore::open(url).await?));
        #[cfg(not(feature = "sqlite"))]
        return Err(BffStoreError::Unavailable(
            "keycard-bff was built without the sqlite feature".into(),
        ));
    }
    Err(BffStoreError::Unavailable(format!(
        "unsupported database URL {url:?}: use sqlite://PATH or postgres://..."
    )))
}

#[cfg(test)]
mod tests {
    #[test]
    fn migration_folders_hold_the_same_names() {
        let dir = |d: &str| {
            let mut v: Vec<String> =
                std::fs::read_dir(format!("{}/migrations/{d}", env!("CARGO_MANIFEST_DIR")))
                    .unwrap()
                    .map(|e| {
                        e.unwrap()
                            .file_name()
                            .to_string_lossy()
                            .trim_end_matches(".sql")
                            .to_owned()
                    })
                    .collect();
            v.sort();
            v
        };
        assert_eq!(dir("sqlite"), dir("postgres"));
        assert_eq!(dir("sqlite"), super::migration_names());
    }
}

#[cfg(all(test, feature = "sqlite"))]
#[allow(clippy::unwrap_used)]
mod sqlite_conformance {
    use std::sync::Arc;

    use crate::store::BffStore;

    async fn store() -> Option<Arc<dyn BffStore>> {
        // The directory outlives the test (it is small and under the temp dir).
        let dir = tempfile::tempdir().unwrap().keep();
        let path = dir.join("bff.db");
        let store = super::SqliteBffStore::open(path.to_str().unwrap())
            .await
            .unwrap();
        Some(Arc::new(store))
    }

    crate::bff_store_conformance_tests!(store());
}

#[cfg(all(test, feature = "postgres"))]
#[allow(clippy::unwrap_used)]
mod postgres_conformance {
    use std::sync::Arc;

    use crate::store::BffStore;

    /// A store in a fresh schema of `KEYCARD_TEST_PG_URL`'s database, or a loud skip.
    async fn store() -> Option<Arc<dyn BffStore>> {
        let Ok(url) = std::env::var("KEYCARD_TEST_PG_URL") else {
            eprintln!("SKIPPED on PostgreSQL: KEYCARD_TEST_PG_URL is not set");
            return None;
        };
        Some(Arc::new(
            super::postgres::tests::store_in_new_schema(&url).await,
        ))
    }

    crate::bff_store_conformance_tests!(store());
}
