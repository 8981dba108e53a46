//! SQL implementations of [`keycard_store::Store`]: SQLite (embedded, the default) and
//! PostgreSQL (several stateless Keycard nodes on one database).
//!
//! Both backends share one text of SQL (the files in `common/`, `include!`d by each backend
//! module), in the portable subset — `TEXT` ids, `BIGINT` unix seconds, `BOOLEAN`,
//! `ON CONFLICT`, no `RETURNING`, no advisory locks, no LISTEN/NOTIFY — so a
//! PostgreSQL-compatible distributed SQL engine could run it too. Only the schema differs (`BLOB`
//! vs `BYTEA`), in two migration folders whose file names must match one for one
//! ([`migration_names`] is checked by a test).
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
    Step {
        version: 5,
        description: "hardening_and_revocation_log",
        sqlite: include_str!("../../../migrations/sqlite/0005_hardening_and_revocation_log.sql"),
        postgres: include_str!(
            "../../../migrations/postgres/0005_hardening_and_revocation_log.sql"
        ),
    },
    Step {
        version: 6,
        description: "device_codes",
        sqlite: include_str!("../../../migrations/sqlite/0006_device_codes.sql"),
        postgres: include_str!("../../../migrations/postgres/0006_device_codes.sql"),
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

    /// Rows as migration 3 left them, the same on both backends: a revoked grant with two
    /// stored access tokens and a live grant with none.
    const PRE_4_GRANTS: &str = "INSERT INTO grants (id, client_id, user_id, scope, audience, auth_time, sid, nonce, created_at, revoked) \
         VALUES ('g1', 'app', 'u1', 'openid', NULL, 10, 's', NULL, 10, TRUE), \
                ('g2', 'app', 'u1', 'openid', NULL, 10, 's', NULL, 10, FALSE); \
         INSERT INTO access_tokens (jti, grant_id, expires_at) VALUES ('j1', 'g1', 500), ('j2', 'g1', 900);";

    /// The PostgreSQL side of migration 4 with rows in place (needs `KEYCARD_TEST_PG_URL`).
    #[tokio::test]
    async fn migration_4_moves_access_token_horizons_into_grants_on_postgres() {
        let Ok(url) = std::env::var("KEYCARD_TEST_PG_URL") else {
            eprintln!("SKIPPED migration_4 on PostgreSQL: KEYCARD_TEST_PG_URL is not set");
            return;
        };
        let schema = format!("kc_test_m4_{}", std::process::id());
        let admin = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        )))
        .execute(&admin)
        .await
        .unwrap();
        let opts: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_with(opts.options([("search_path", schema.as_str())]))
            .await
            .unwrap();
        for step in &super::STEPS[..3] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(step.postgres))
                .execute(&pool)
                .await
                .unwrap();
        }
        sqlx::raw_sql(PRE_4_GRANTS).execute(&pool).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(super::STEPS[3].postgres))
            .execute(&pool)
            .await
            .unwrap();
        let grants: Vec<(String, i64, bool)> =
            sqlx::query_as("SELECT id, tokens_until, revoked FROM grants ORDER BY id")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(grants, [("g1".into(), 900, true), ("g2".into(), 0, false)]);
        let gone: Option<String> = sqlx::query_scalar("SELECT to_regclass('access_tokens')::text")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(gone, None);
        pool.close().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&admin)
            .await
            .unwrap();
    }

    /// Rows written before migration 4 (access tokens stored one row each) survive it: the
    /// grant keeps its horizon and its revocation flag, codes and refresh tokens keep every
    /// column through the SQLite table rebuild.
    #[tokio::test]
    async fn migration_4_moves_access_token_horizons_into_grants() {
        use sqlx::Row;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        for step in &super::STEPS[..3] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(step.sqlite))
                .execute(&pool)
                .await
                .unwrap();
        }
        sqlx::raw_sql(PRE_4_GRANTS).execute(&pool).await.unwrap();
        sqlx::raw_sql(
            "INSERT INTO refresh_tokens (hash, grant_id, scope, expires_at, used) VALUES (x'0102', 'g1', 'openid offline_access', 700, TRUE); \
             INSERT INTO codes (hash, grant_id, redirect_uri, redirect_uri_sent, code_challenge, expires_at, used) \
                 VALUES (x'0304', 'g2', 'https://app/cb', TRUE, 'chal', 60, FALSE);",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(super::STEPS[3].sqlite))
            .execute(&pool)
            .await
            .unwrap();
        let grants: Vec<(String, i64, bool)> =
            sqlx::query_as("SELECT id, tokens_until, revoked FROM grants ORDER BY id")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(grants, [("g1".into(), 900, true), ("g2".into(), 0, false)]);
        let rt = sqlx::query("SELECT * FROM refresh_tokens")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(rt.get::<Vec<u8>, _>("hash"), [1, 2]);
        assert_eq!(rt.get::<String, _>("grant_id"), "g1");
        assert_eq!(rt.get::<String, _>("scope"), "openid offline_access");
        assert_eq!(rt.get::<i64, _>("expires_at"), 700);
        assert!(rt.get::<bool, _>("used"));
        let code = sqlx::query("SELECT * FROM codes")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(code.get::<Vec<u8>, _>("hash"), [3, 4]);
        assert_eq!(code.get::<String, _>("redirect_uri"), "https://app/cb");
        assert_eq!(code.get::<String, _>("code_challenge"), "chal");
        assert!(code.get::<bool, _>("redirect_uri_sent"));
        assert!(!code.get::<bool, _>("used"));
        let tables: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name IN ('access_tokens', 'codes', 'refresh_tokens')",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(tables.len(), 2, "access_tokens is gone");
        assert!(tables.iter().all(|(_, sql)| sql.contains("WITHOUT ROWID")));
        let indexes: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name IN \
             ('codes_grant_id', 'codes_expires_at', 'refresh_tokens_grant_id', 'refresh_tokens_expires_at')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(indexes, 4);
    }
}
