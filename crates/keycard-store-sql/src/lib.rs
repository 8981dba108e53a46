//! SQL implementations of [`keycard_store::Store`]: SQLite (embedded, the default) and
//! PostgreSQL (several stateless Keycard nodes on one database).
//!
//! Both backends share one text of SQL (`common.rs`, `include!`d by each backend module), in the
//! portable subset — `TEXT` ids, `BIGINT` unix seconds, `BOOLEAN`, `ON CONFLICT`, no
//! `RETURNING`, no advisory locks, no LISTEN/NOTIFY — so a PostgreSQL-compatible distributed SQL
//! engine could run it too. Only the schema differs (`BLOB` vs `BYTEA`), in two migration folders
//! whose file names must match one for one ([`migration_names`] is checked by a test).
//!
//! Invariant: this crate is the only one that sees SQL. Every multi-statement `Store` operation
//! is one transaction; single-use redemptions are an `UPDATE … WHERE used = FALSE` whose row
//! count decides the one winner, on both backends.

use std::borrow::Cow;

use keycard_store::StoreError;
use sqlx::migrate::{Migration, MigrationType, Migrator};

pub mod any;
pub mod postgres;
pub mod sqlite;

pub use any::AnyStore;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// One migration: version, description, and the SQL of each backend.
struct Step {
    version: i64,
    description: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// The migrations, in order. Each file name is `NNNN_description.sql` in both folders.
const STEPS: &[Step] = &[
    Step {
        version: 1,
        description: "init",
        sqlite: include_str!("../../../migrations/sqlite/0001_init.sql"),
        postgres: include_str!("../../../migrations/postgres/0001_init.sql"),
    },
    Step {
        version: 2,
        description: "revoked_access_tokens",
        sqlite: include_str!("../../../migrations/sqlite/0002_revoked_access_tokens.sql"),
        postgres: include_str!("../../../migrations/postgres/0002_revoked_access_tokens.sql"),
    },
    Step {
        version: 3,
        description: "login_failures",
        sqlite: include_str!("../../../migrations/sqlite/0003_login_failures.sql"),
        postgres: include_str!("../../../migrations/postgres/0003_login_failures.sql"),
    },
    Step {
        version: 4,
        description: "grant_token_horizon",
        sqlite: include_str!("../../../migrations/sqlite/0004_grant_token_horizon.sql"),
        postgres: include_str!("../../../migrations/postgres/0004_grant_token_horizon.sql"),
    },
];

/// Migration names (`NNNN_description`), as the embedded list knows them.
pub fn migration_names() -> Vec<String> {
    STEPS
        .iter()
        .map(|s| format!("{:04}_{}", s.version, s.description))
        .collect()
}

#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

fn migrator(backend: Backend) -> Migrator {
    Migrator::with_migrations(
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
    )
}

fn unavailable(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::Unavailable(e.to_string()),
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

/// Either backend, chosen by URL at start-up (`sqlite://…` or `postgres://…`).
#[derive(Debug, Clone)]
pub enum AnyStoreUrl {
    Sqlite(String),
    Postgres(String),
}

impl AnyStoreUrl {
    /// Classifies a database URL; a bare path means SQLite.
    pub fn parse(url: &str) -> Result<AnyStoreUrl, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(AnyStoreUrl::Postgres(url.to_owned()))
        } else if url.starts_with("sqlite:") || !url.contains("://") {
            Ok(AnyStoreUrl::Sqlite(url.to_owned()))
        } else {
            Err(format!(
                "unsupported database URL {url:?}: use sqlite://PATH or postgres://..."
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn migration_folders_hold_the_same_names() {
        let dir = |d: &str| {
            let mut v: Vec<String> = std::fs::read_dir(format!(
                "{}/../../migrations/{d}",
                env!("CARGO_MANIFEST_DIR")
            ))
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
