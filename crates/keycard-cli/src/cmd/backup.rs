//! `keycard backup PATH`: a consistent copy of the SQLite database, taken with `VACUUM INTO`,
//! so it is safe while the server runs.
//!
//! [`run`] checks the source and target, writes the copy and says where the master key is.
//!
//! A backup never overwrites an existing file and never copies the master key: the signing
//! keys in the copy stay encrypted under it, and a stolen backup must not carry the key that
//! decrypts them.
//!
//! Not here: PostgreSQL, which has its own tools (`pg_dump`); restoring, which is serving the
//! copy with the same master key.

use anyhow::{Context as _, bail};
use clap::Args;
use keycard_store_sql::{AnyStoreUrl, SqliteStore};
use serde_json::json;

use crate::cmd::say;
use crate::config;

#[derive(Args, Debug)]
pub(crate) struct BackupArgs {
    /// Where to write the copy; must not exist yet.
    path: std::path::PathBuf,
}

/// `keycard backup PATH`: `VACUUM INTO` on SQLite; PostgreSQL has its own tools.
pub(crate) async fn run(
    db_url: &str,
    file: &config::FileConfig,
    args: &BackupArgs,
    json_out: bool,
) -> anyhow::Result<()> {
    let path = args.path.as_path();
    let AnyStoreUrl::Sqlite(url) = AnyStoreUrl::parse(db_url).map_err(anyhow::Error::msg)? else {
        bail!("keycard backup copies a SQLite database; back up PostgreSQL with pg_dump");
    };
    let source = keycard_store_sql::sqlite::path_of_url(&url);
    if !source.exists() {
        bail!("no SQLite database at {}", source.display());
    }
    if path.exists() {
        bail!(
            "{} already exists; a backup never overwrites",
            path.display()
        );
    }
    SqliteStore::open(source)
        .await
        .with_context(|| format!("opening {}", source.display()))?
        .backup_into(path)
        .await
        .with_context(|| format!("writing the backup to {}", path.display()))?;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let key = config::master_key_source(file, db_url);
    say(
        json_out,
        json!({ "backup": path.display().to_string(), "bytes": bytes, "master_key": key }),
        &format!(
            "wrote {} ({bytes} bytes)\nits signing keys are encrypted under the master key ({key}); \
             keep that key apart from the backup. To restore, serve the copy with the same key \
             (as <copy>.key, or KEYCARD_MASTER_KEY_FILE / KEYCARD_MASTER_KEY).",
            path.display()
        ),
    );
    Ok(())
}
