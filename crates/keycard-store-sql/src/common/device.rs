// Device authorizations (RFC 8628) for both SQL backends: creation, lookup by user code, the
// user's answer (with the grant it creates), polls and the single-use redemption. Each backend
// module `include!`s this file after defining `Db`, `DbRow`, `DbConn` and `SqlStore`.
//
// Entry points: the `SqlStore::device_*` methods behind the `Store` operations of the same
// names (`store.rs`).
//
// Invariant: every transaction here starts with a write (SQLite then holds the write lock, and
// PostgreSQL the row's lock, until commit), so concurrent polls and answers of one
// authorization are judged one after the other; the poll itself is decided by the pure
// `keycard_protocol::device::poll`. A redemption is an `UPDATE … WHERE state = 'approved'`
// whose row count decides the one winner, like codes and refresh tokens.

fn device_from(row: &DbRow) -> Result<DeviceAuthorization> {
    let state = row.text("state")?;
    Ok(DeviceAuthorization {
        hash: hash_col(row, "hash")?,
        user_code: hash_col(row, "user_code_hash")?,
        client_id: value_col(row, "client_id", ClientId::parse)?,
        scope: scope_col(row, "scope")?,
        audience: value_col_opt(row, "audience", Audience::parse)?,
        requested_from: row
            .text_opt("requested_from")?
            .map(|ip| ip.parse().map_err(|_| corrupt("requested_from")))
            .transpose()?,
        created_at: UnixTime(row.int("created_at")?),
        expires_at: UnixTime(row.int("expires_at")?),
        interval: row.int("poll_interval")?,
        last_poll_at: row.int_opt("last_poll_at")?.map(UnixTime),
        state: keycard_protocol::device::DeviceState::parse(&state)
            .ok_or_else(|| corrupt("device state"))?,
        grant_id: value_col_opt(row, "grant_id", GrantId::parse)?,
    })
}

/// Marks an approved device code redeemed unless its grant was revoked; one row changed means
/// this redemption won.
const SQL_MARK_DEVICE: &str = "UPDATE device_codes SET state = 'redeemed' \
     WHERE hash = $1 AND state = 'approved' \
     AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.id = device_codes.grant_id AND g.revoked)";

impl SqlStore {
    async fn device_create(&self, d: &DeviceAuthorization) -> Result<()> {
        sqlx::query(
            "INSERT INTO device_codes (hash, user_code_hash, client_id, scope, audience, \
             requested_from, created_at, expires_at, poll_interval, last_poll_at, state, grant_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(d.hash.as_bytes())
        .bind(d.user_code.as_bytes())
        .bind(d.client_id.as_str())
        .bind(d.scope.to_wire())
        .bind(d.audience.as_deref())
        .bind(d.requested_from.map(|ip| ip.to_string()))
        .bind(d.created_at.secs())
        .bind(d.expires_at.secs())
        .bind(d.interval)
        .bind(d.last_poll_at.map(UnixTime::secs))
        .bind(d.state.as_str())
        .bind(d.grant_id.as_deref())
        .execute(&self.writer)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn device_by_user_code(
        &self,
        user_code: &SecretHash<kind::UserCode>,
        now: UnixTime,
    ) -> Result<Option<DeviceAuthorization>> {
        // From the writer: the page that shows the code right after the user answered must
        // see the answer.
        let row =
            sqlx::query("SELECT * FROM device_codes WHERE user_code_hash = $1 AND expires_at > $2")
                .bind(user_code.as_bytes())
                .bind(now.secs())
                .fetch_optional(&self.writer)
                .await
                .map_err(unavailable)?;
        row.as_ref().map(device_from).transpose()
    }

    async fn device_decide(
        &self,
        user_code: &SecretHash<kind::UserCode>,
        decision: DeviceDecision<'_>,
        now: UnixTime,
    ) -> Result<bool> {
        let (state, grant) = match decision {
            DeviceDecision::Approve(g) => ("approved", Some(g)),
            DeviceDecision::Deny => ("denied", None),
        };
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        let n = sqlx::query(
            "UPDATE device_codes SET state = $1, grant_id = $2 \
             WHERE user_code_hash = $3 AND state = 'pending' AND expires_at > $4",
        )
        .bind(state)
        .bind(grant.map(|g| g.id.as_str()))
        .bind(user_code.as_bytes())
        .bind(now.secs())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        if let Some(g) = grant {
            // The grant is kept at least until the device code expires, so the janitor cannot
            // sweep it before the device collects its tokens.
            sqlx::query(
                "INSERT INTO grants (id, client_id, user_id, scope, audience, auth_time, sid, \
                 nonce, created_at, expires_at, tokens_until) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, expires_at \
                 FROM device_codes WHERE user_code_hash = $11",
            )
            .bind(g.id.as_str())
            .bind(g.client_id.as_str())
            .bind(g.user_id.as_str())
            .bind(g.scope.to_wire())
            .bind(g.audience.as_deref())
            .bind(g.auth_time.secs())
            .bind(g.sid.as_deref())
            .bind(g.nonce.as_deref())
            .bind(g.created_at.secs())
            .bind(g.expires_at.map(UnixTime::secs))
            .bind(user_code.as_bytes())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn device_poll(
        &self,
        hash: &SecretHash<kind::DeviceCode>,
        client_id: &ClientId,
        now: UnixTime,
    ) -> Result<Option<DevicePoll>> {
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        // A write first: from here until commit no other poll of this code is judged.
        let n = sqlx::query("UPDATE device_codes SET last_poll_at = last_poll_at WHERE hash = $1")
            .bind(hash.as_bytes())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        let row = sqlx::query("SELECT * FROM device_codes WHERE hash = $1")
            .bind(hash.as_bytes())
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
        let d = device_from(&row)?;
        let grant = match &d.grant_id {
            Some(id) => {
                let sql = format!("SELECT {GRANT_COLS} FROM grants g WHERE g.id = $1");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                row.map(|r| Ok::<_, StoreError>((grant_from(&r)?, r.flag("g_revoked")?)))
                    .transpose()?
            }
            None => None,
        };
        let facts = keycard_protocol::device::PollFacts {
            client_id: &d.client_id,
            state: d.state,
            expires_at: d.expires_at,
            interval: d.interval,
            last_poll_at: d.last_poll_at,
            // A grant swept away is as good as revoked.
            grant_revoked: d.grant_id.is_some() && grant.as_ref().is_none_or(|(_, r)| *r),
        };
        let decision = keycard_protocol::device::poll(&facts, client_id, now);
        if let Some(r) = decision.record {
            sqlx::query(
                "UPDATE device_codes SET last_poll_at = $1, poll_interval = $2 WHERE hash = $3",
            )
            .bind(r.at.secs())
            .bind(r.interval)
            .bind(hash.as_bytes())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(Some(DevicePoll {
            outcome: decision.outcome,
            grant: grant.map(|(g, _)| g),
        }))
    }

    async fn device_redeem(
        &self,
        hash: &SecretHash<kind::DeviceCode>,
        refresh: Option<&NewRefreshToken>,
        access: &AccessTokenRecord,
    ) -> Result<Redeemed> {
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        let marked = sqlx::query(SQL_MARK_DEVICE)
            .bind(hash.as_bytes())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected();
        if marked == 0 {
            return Ok(Redeemed::AlreadyUsed);
        }
        if let Some(r) = refresh {
            sqlx::query(SQL_INSERT_REFRESH)
                .bind(r.hash.as_bytes())
                .bind(r.grant_id.as_str())
                .bind(r.scope.to_wire())
                .bind(r.expires_at.secs())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        if access.outlives(refresh) {
            sqlx::query(SQL_EXTEND_GRANT)
                .bind(access.expires_at.secs())
                .bind(access.grant_id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(Redeemed::Won)
    }
}
