// Back-channel logout deliveries (OIDC Back-Channel Logout 1.0 §2.7) for both SQL backends:
// the due ones, a lease taken by one node, the outcome, and the administrators' list. Each
// backend module `include!`s this file after defining `Db`, `DbRow` and `SqlStore`.
//
// Entry points: the `SqlStore::deliveries_*`/`delivery_*` methods behind the `Store`
// operations (`store.rs`).

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

    async fn delivery_claim(&self, id: &str, now: UnixTime, lease_until: UnixTime) -> Result<bool> {
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

    async fn delivery_finish(&self, id: &str, outcome: &DeliveryOutcome) -> Result<()> {
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
}
