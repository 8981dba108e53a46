// The janitor's sweep for both SQL backends: expired codes, refresh tokens, sessions,
// transactions, device codes, revocation events past their horizon, old logout deliveries,
// orphaned grants, stale login counters and retired keys, each in bounded batches so no write transaction is
// long. Each backend module `include!`s this file.
//
// Entry point: `SqlStore::purge` (the `Store::purge_expired` operation).

/// Slices of 1,000 grants checked for orphans per janitor run.
const GRANT_SWEEP_SLICES: usize = 10;

impl SqlStore {
    /// Deletes expired rows in bounded batches; returns how many went.
    async fn purge(&self, now: UnixTime) -> Result<u64> {
        let mut total = 0;
        for (table, key) in [
            ("codes", "hash"),
            ("refresh_tokens", "hash"),
            ("sessions", "id_hash"),
            ("auth_txns", "id_hash"),
            ("device_codes", "hash"),
        ] {
            // Bounded batches keep each write transaction short.
            loop {
                let sql = format!(
                    "DELETE FROM {table} WHERE {key} IN \
                     (SELECT {key} FROM {table} WHERE expires_at <= $1 LIMIT 1000)"
                );
                let n = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(now.secs())
                    .execute(&self.writer)
                    .await
                    .map_err(unavailable)?
                    .rows_affected();
                total += n;
                if n < 1000 {
                    break;
                }
            }
        }
        // Grants with nothing left pointing at them. A scan of the whole table with three
        // anti-joins cost seconds with 2M grants (and showed as a p99 spike), so each run sweeps
        // a few keyset-paginated slices after a cursor that wraps around.
        for _ in 0..GRANT_SWEEP_SLICES {
            let cursor = self
                .grant_cursor
                .lock()
                .map(|c| c.clone())
                .unwrap_or_default();
            let ids: Vec<String> =
                sqlx::query_scalar("SELECT id FROM grants WHERE id > $1 ORDER BY id LIMIT 1000")
                    .bind(&cursor)
                    .fetch_all(&self.reader)
                    .await
                    .map_err(unavailable)?;
            let Some(last) = ids.last().cloned() else {
                if let Ok(mut c) = self.grant_cursor.lock() {
                    c.clear();
                }
                break;
            };
            total += sqlx::query(
                "DELETE FROM grants WHERE id > $1 AND id <= $2 \
                 AND NOT EXISTS (SELECT 1 FROM codes WHERE grant_id = grants.id) \
                 AND NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE grant_id = grants.id) \
                 AND tokens_until <= $3",
            )
            .bind(&cursor)
            .bind(&last)
            .bind(now.secs())
            .execute(&self.writer)
            .await
            .map_err(unavailable)?
            .rows_affected();
            if let Ok(mut c) = self.grant_cursor.lock() {
                *c = if ids.len() < 1000 {
                    String::new()
                } else {
                    last
                };
            }
        }
        total +=
            sqlx::query("DELETE FROM login_failures WHERE last_at <= $1 AND locked_until <= $2")
                .bind(now.secs() - 3600)
                .bind(now.secs())
                .execute(&self.writer)
                .await
                .map_err(unavailable)?
                .rows_affected();
        total += sqlx::query(
            "DELETE FROM revocations WHERE seq IN \
             (SELECT seq FROM revocations WHERE until <= $1 LIMIT 1000)",
        )
        .bind(now.secs())
        .execute(&self.writer)
        .await
        .map_err(unavailable)?
        .rows_affected();
        // Deliveries are kept a week after they were made, for the administrators' view.
        total += sqlx::query("DELETE FROM logout_deliveries WHERE created_at <= $1")
            .bind(now.secs() - 7 * 24 * 3600)
            .execute(&self.writer)
            .await
            .map_err(unavailable)?
            .rows_affected();
        total +=
            sqlx::query("DELETE FROM signing_keys WHERE state = 'retired' AND retire_until <= $1")
                .bind(now.secs())
                .execute(&self.writer)
                .await
                .map_err(unavailable)?
                .rows_affected();
        Ok(total)
    }
}
