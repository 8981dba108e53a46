// Signing-key rotation and emergency revocation for both SQL backends, each one write
// transaction. Each backend module `include!`s this file.
//
// Entry points: `SqlStore::keys_rotate` and `keys_revoke`, behind `Store::rotate_keys` and
// `Store::revoke_key`.
//
// Invariant: a rotation happens at most once per due period however many nodes ask (the
// active key's activation time is re-read in the transaction), and a revoked key leaves the
// table in the same transaction that logs its `kid` event.

impl SqlStore {
    async fn keys_rotate(
        &self,
        new_next: &StoredKey,
        retire_until: UnixTime,
        due_after: Option<i64>,
        r: Revocation,
    ) -> Result<bool> {
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        // The conditional update decides: of several nodes rotating on a schedule, the first to
        // commit retires the active key, and the others find it no longer due.
        let retired = sqlx::query(
            "UPDATE signing_keys SET state = 'retired', retire_until = $1 \
             WHERE state = 'active' AND ($2 IS NULL OR COALESCE(activated_at, created_at) <= $3)",
        )
        .bind(retire_until.secs())
        .bind(due_after)
        .bind(r.at.secs() - due_after.unwrap_or(0))
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected();
        if retired == 0 && due_after.is_some() {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE signing_keys SET state = 'active', activated_at = $1 WHERE state = 'next'",
        )
        .bind(r.at.secs())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        insert_next_key(&mut tx, new_next).await?;
        log_revocation(&mut tx, r, "jwks", new_next.kid.as_str()).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn keys_revoke(&self, kid: &Kid, replacement: &StoredKey, r: Revocation) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM signing_keys WHERE kid = $1")
                .bind(kid.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?;
        let state = state.ok_or(StoreError::NotFound)?;
        sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid.as_str())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        match KeyState::parse(&state) {
            Some(KeyState::Active) => {
                sqlx::query(
                    "UPDATE signing_keys SET state = 'active', activated_at = $1 \
                     WHERE state = 'next'",
                )
                .bind(r.at.secs())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                insert_next_key(&mut tx, replacement).await?;
            }
            Some(KeyState::Next) => insert_next_key(&mut tx, replacement).await?,
            Some(KeyState::Retired) => {}
            None => return Err(corrupt("key state")),
        }
        log_revocation(&mut tx, r, "kid", kid.as_str()).await?;
        if state != "retired" {
            log_revocation(&mut tx, r, "jwks", replacement.kid.as_str()).await?;
        }
        tx.commit().await.map_err(unavailable)
    }
}
