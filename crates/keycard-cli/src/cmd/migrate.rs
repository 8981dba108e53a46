//! `keycard migrate`: apply the database migrations and exit.
//!
//! [`run`] opens the store with migrations on and exits. Together with
//! `keycard serve --no-migrate` (honoured by PostgreSQL; SQLite always migrates on open) it
//! makes schema upgrades a separate deploy step.
//!
//! Opening an up-to-date database changes nothing, so the command can run on every deploy.
//!
//! Not here: the migrations themselves (`migrations/{sqlite,postgres}`, run by the store
//! crates).

use serde_json::json;

use crate::cmd::{open_store, say};

pub(crate) async fn run(db_url: &str, json_out: bool) -> anyhow::Result<()> {
    open_store(db_url, true).await?;
    say(json_out, json!({ "migrated": true }), "migrations applied");
    Ok(())
}
