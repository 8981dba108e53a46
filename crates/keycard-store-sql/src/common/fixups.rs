// One-time data fix-ups that SQL migrations cannot do, run in Rust after them, each once per
// database (recorded by name in `store_meta`). Each backend module `include!`s this file.
//
// Entry point: `run_fixups`, called right after the migrator by each backend's constructor.

/// Refolds every username with the full rule (migration 5 could only fold ASCII in SQL).
const FIXUP_USERNAME_KEYS: &str = "username_key_v1";

async fn run_fixups(pool: &sqlx::Pool<Db>) -> Result<()> {
    let done: Option<String> = sqlx::query_scalar("SELECT value FROM store_meta WHERE key = $1")
        .bind(FIXUP_USERNAME_KEYS)
        .fetch_optional(pool)
        .await
        .map_err(unavailable)?;
    if done.is_some() {
        return Ok(());
    }
    let mut tx = pool.begin().await.map_err(unavailable)?;
    let users: Vec<(String, String, String)> =
        sqlx::query_as("SELECT id, username, username_key FROM users")
            .fetch_all(&mut *tx)
            .await
            .map_err(unavailable)?;
    for (id, username, key) in users {
        let folded = Username::parse(&username)
            .map_err(|_| corrupt("username"))?
            .folded();
        if folded != key {
            sqlx::query("UPDATE users SET username_key = $1 WHERE id = $2")
                .bind(&folded)
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(|e| match unavailable(e) {
                    StoreError::Conflict => StoreError::Corrupt(format!(
                        "two usernames differ only in case or width ({username}); \
                         remove one with `keycard user remove` before upgrading"
                    )),
                    other => other,
                })?;
        }
    }
    sqlx::query("INSERT INTO store_meta (key, value) VALUES ($1, 'done')")
        .bind(FIXUP_USERNAME_KEYS)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    tx.commit().await.map_err(unavailable)
}
