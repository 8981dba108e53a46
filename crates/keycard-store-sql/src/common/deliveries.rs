// The back-channel logout outbox (OIDC Back-Channel Logout 1.0 §2.7) and the ending of
// expired sessions for both SQL backends. Each backend module `include!`s this file.
//
// Entry points: the `deliveries_*` and `sessions_end_expired` methods behind the `Store`
// operations of the same purpose.
//
// Invariant: a delivery is claimed by one node at a time (`deliveries_claim` moves its next
// attempt to the lease's end only if it is still due), and a delivery given up is never due
// again; an expired session ends in its own transaction, exactly as a logout does.

impl SqlStore {
    async fn deliveries_due(&self, now: UnixTime, limit: u32) -> Result<Vec<LogoutDelivery>> {
        let rows = sqlx::query(
            "SELECT * FROM logout_deliveries WHERE delivered_at IS NULL AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at LIMIT $2",
        )
        .bind(now.secs())
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(unavailable)?;
        rows.iter().map(delivery_from).collect()
    }

    async fn deliveries_claim(
        &self,
        id: &str,
        now: UnixTime,
        lease_until: UnixTime,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE logout_deliveries SET next_attempt_at = $1 \
             WHERE id = $2 AND delivered_at IS NULL AND next_attempt_at <= $3",
        )
        .bind(lease_until.secs())
        .bind(id)
        .bind(now.secs())
        .execute(&self.writer)
        .await
        .map_err(unavailable)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn deliveries_finish(&self, id: &str, outcome: &DeliveryOutcome) -> Result<()> {
        let q = match outcome {
            DeliveryOutcome::Delivered { at } => sqlx::query(
                "UPDATE logout_deliveries SET delivered_at = $1, attempts = attempts + 1, \
                 last_error = NULL WHERE id = $2",
            )
            .bind(at.secs()),
            DeliveryOutcome::Failed { error, retry_at } => sqlx::query(
                "UPDATE logout_deliveries SET next_attempt_at = $1, attempts = attempts + 1, \
                 last_error = $2 WHERE id = $3",
            )
            .bind(retry_at.secs())
            .bind(error.as_str()),
            // Given up: never due again, and the error says why.
            DeliveryOutcome::GaveUp { error } => sqlx::query(
                "UPDATE logout_deliveries SET next_attempt_at = $1, \
                 attempts = attempts + 1, last_error = $2 WHERE id = $3",
            )
            .bind(LogoutDelivery::NEVER.secs())
            .bind(error.as_str()),
        };
        affected(
            q.bind(id)
                .execute(&self.writer)
                .await
                .map_err(unavailable)?
                .rows_affected(),
        )
    }

    async fn deliveries_list(&self, limit: u32) -> Result<Vec<LogoutDelivery>> {
        let rows =
            sqlx::query("SELECT * FROM logout_deliveries ORDER BY created_at DESC, id LIMIT $1")
                .bind(i64::from(limit))
                .fetch_all(&self.reader)
                .await
                .map_err(unavailable)?;
        rows.iter().map(delivery_from).collect()
    }

    async fn sessions_end_expired(&self, r: Revocation, limit: u32) -> Result<u64> {
        let sids: Vec<String> = sqlx::query_scalar(
            "SELECT sid FROM sessions WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2",
        )
        .bind(r.at.secs())
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(unavailable)?;
        let mut ended = 0;
        // One short transaction per session, like a logout; a session another node ended
        // first is simply gone.
        for sid in sids {
            let mut tx = self.writer.begin().await.map_err(unavailable)?;
            let still: Option<i64> = sqlx::query_scalar(
                "SELECT expires_at FROM sessions WHERE sid = $1 AND expires_at <= $2",
            )
            .bind(&sid)
            .bind(r.at.secs())
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
            if still.is_some() {
                end_session_signins(&mut tx, &sid, r).await?;
                ended += 1;
            }
            tx.commit().await.map_err(unavailable)?;
        }
        Ok(ended)
    }
}
