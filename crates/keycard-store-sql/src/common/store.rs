// Every `Store` operation of both SQL backends, written once in the portable SQL subset with
// `$N` placeholders (which sqlx accepts for both SQLite and PostgreSQL). Each backend module
// `include!`s this file after defining `Db`, `DbRow` and `SqlStore { writer, reader }`, so the
// same text compiles against each driver's concrete types.
//
// Entry point: `impl Store for SqlStore`. The backend supplies the hot reads
// (`read_refresh_token`, `read_access_token_revoked`) and `single_use`, which commits a
// redemption.
//
// Invariant: every multi-statement operation is one transaction on the writer, except the
// janitor's `purge_expired`, whose bounded batches are separate writes to keep each one short.
//
// Not here: row mapping (`rows.rs`), the redemption statements (`single_use.rs`), the
// back-channel logout outbox and expired-session endings (`deliveries.rs`), and the device
// grant's operations (`device.rs`).

/// The id of the user with this (folded) username; `NotFound` when there is none.
async fn user_id_for(conn: &mut DbConn, username: &Username) -> Result<String> {
    let id: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE username_key = $1")
        .bind(username.folded())
        .fetch_optional(&mut *conn)
        .await
        .map_err(unavailable)?;
    id.ok_or(StoreError::NotFound)
}

async fn insert_next_key(conn: &mut DbConn, k: &StoredKey) -> Result<()> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, private_key_enc, state, created_at, retire_until) \
         VALUES ($1, $2, $3, 'next', $4, NULL)",
    )
    .bind(k.kid.as_str())
    .bind(&k.alg)
    .bind(&k.private_key_enc)
    .bind(k.created_at.secs())
    .execute(&mut *conn)
    .await
    .map_err(unavailable)?;
    Ok(())
}

fn affected(n: u64) -> Result<()> {
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

impl Store for SqlStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn create_user(&self, u: &User) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        // RFC 9700 §4.15: a user id must never equal a client id (a machine token's `sub`).
        let taken: Option<String> = sqlx::query_scalar("SELECT id FROM clients WHERE id = $1")
            .bind(u.id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
        if taken.is_some() {
            return Err(StoreError::Conflict);
        }
        sqlx::query(
            "INSERT INTO users (id, username, username_key, password_hash, name, given_name, \
             family_name, picture, email, email_verified, disabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(u.id.as_str())
        .bind(u.username.as_str())
        .bind(u.username.folded())
        .bind(u.password_hash.as_phc())
        .bind(&u.name)
        .bind(&u.given_name)
        .bind(&u.family_name)
        .bind(&u.picture)
        .bind(&u.email)
        .bind(u.email_verified)
        .bind(u.disabled)
        .bind(u.created_at.secs())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    async fn user_by_username(&self, username: &Username) -> Result<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE username_key = $1")
            .bind(username.folded())
            .fetch_optional(&self.reader)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(user_from).transpose()
    }

    async fn user_by_id(&self, id: &UserId) -> Result<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.reader)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(user_from).transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY username")
            .fetch_all(&self.reader)
            .await
            .map_err(unavailable)?;
        rows.iter().map(user_from).collect()
    }

    async fn remove_user(&self, username: &Username, r: Revocation) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        let id = user_id_for(&mut tx, username).await?;
        end_user_signins(&mut tx, &id, r).await?;
        for sql in [
            "DELETE FROM consents WHERE user_id = $1",
            "DELETE FROM users WHERE id = $1",
        ] {
            sqlx::query(sql)
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn set_password(
        &self,
        username: &Username,
        hash: &PasswordHash,
        r: Revocation,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        let id = user_id_for(&mut tx, username).await?;
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash.as_phc())
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        end_user_signins(&mut tx, &id, r).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn set_user_disabled(
        &self,
        username: &Username,
        disabled: bool,
        r: Revocation,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        let id = user_id_for(&mut tx, username).await?;
        sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
            .bind(disabled)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        // Enabling revives nothing: what disabling revoked stays revoked.
        if disabled {
            end_user_signins(&mut tx, &id, r).await?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn create_client(&self, c: &Client, now: UnixTime) -> Result<()> {
        let redirects: Vec<&str> = c.redirect_uris.iter().map(RedirectUri::as_str).collect();
        let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
        let logout_redirects: Vec<&str> = c
            .post_logout_redirect_uris
            .iter()
            .map(RedirectUri::as_str)
            .collect();
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        // RFC 9700 §4.15: a client id must never equal a user id, or a machine token's `sub`
        // would look like that user's.
        let taken: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
            .bind(c.id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
        if taken.is_some() {
            return Err(StoreError::Conflict);
        }
        sqlx::query(
            "INSERT INTO clients (id, name, secret_hash, redirect_uris, grant_types, scopes, \
             audiences, first_party, created_at, resource_servers, feed, \
             post_logout_redirect_uris, backchannel_logout_uri, \
             backchannel_logout_session_required) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(c.id.as_str())
        .bind(&c.name)
        .bind(c.secret_hash.map(|h| h.as_bytes().to_vec()))
        .bind(json_list(&redirects))
        .bind(json_list(&grants))
        .bind(c.scopes.to_wire())
        .bind(json_list(&c.audiences))
        .bind(c.first_party)
        .bind(now.secs())
        .bind(json_list(&c.resource_servers))
        .bind(c.feed)
        .bind(json_list(&logout_redirects))
        .bind(c.backchannel_logout.as_ref().map(|b| b.uri.as_str()))
        .bind(
            c.backchannel_logout
                .as_ref()
                .is_some_and(|b| b.session_required),
        )
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    async fn client(&self, id: &ClientId) -> Result<Option<Client>> {
        let row = sqlx::query("SELECT * FROM clients WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.reader)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(client_from).transpose()
    }

    async fn list_clients(&self) -> Result<Vec<Client>> {
        let rows = sqlx::query("SELECT * FROM clients ORDER BY id")
            .fetch_all(&self.reader)
            .await
            .map_err(unavailable)?;
        rows.iter().map(client_from).collect()
    }

    async fn remove_client(&self, id: &ClientId, r: Revocation) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        let n = sqlx::query("DELETE FROM clients WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected();
        affected(n)?;
        sqlx::query("UPDATE grants SET revoked = TRUE WHERE client_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        sqlx::query("DELETE FROM consents WHERE client_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        log_revocation(&mut tx, r, "client", id.as_str()).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn create_api(&self, a: &Api, now: UnixTime) -> Result<()> {
        sqlx::query(
            "INSERT INTO apis (identifier, name, scopes, access_token_ttl, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(a.identifier.as_str())
        .bind(&a.name)
        .bind(a.scopes.to_wire())
        .bind(a.access_token_ttl_secs)
        .bind(now.secs())
        .execute(&self.writer)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn api(&self, identifier: &Audience) -> Result<Option<Api>> {
        let row = sqlx::query("SELECT * FROM apis WHERE identifier = $1")
            .bind(identifier.as_str())
            .fetch_optional(&self.reader)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(api_from).transpose()
    }

    async fn list_apis(&self) -> Result<Vec<Api>> {
        let rows = sqlx::query("SELECT * FROM apis ORDER BY identifier")
            .fetch_all(&self.reader)
            .await
            .map_err(unavailable)?;
        rows.iter().map(api_from).collect()
    }

    async fn remove_api(&self, identifier: &Audience) -> Result<()> {
        let n = sqlx::query("DELETE FROM apis WHERE identifier = $1")
            .bind(identifier.as_str())
            .execute(&self.writer)
            .await
            .map_err(unavailable)?
            .rows_affected();
        affected(n)
    }

    async fn signing_keys(&self) -> Result<Vec<StoredKey>> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid")
            .fetch_all(&self.reader)
            .await
            .map_err(unavailable)?;
        rows.iter().map(key_from).collect()
    }

    async fn insert_key(&self, k: &StoredKey) -> Result<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_key_enc, state, created_at, retire_until, \
             activated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(k.kid.as_str())
        .bind(&k.alg)
        .bind(&k.private_key_enc)
        .bind(k.state.as_str())
        .bind(k.created_at.secs())
        .bind(k.retire_until.map(UnixTime::secs))
        .bind(k.activated_at.map(UnixTime::secs))
        .execute(&self.writer)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn rotate_keys(
        &self,
        new_next: &StoredKey,
        retire_until: UnixTime,
        due_after: Option<i64>,
        r: Revocation,
    ) -> Result<bool> {
        self.keys_rotate(new_next, retire_until, due_after, r).await
    }

    async fn revoke_key(&self, kid: &Kid, replacement: &StoredKey, r: Revocation) -> Result<()> {
        self.keys_revoke(kid, replacement, r).await
    }

    async fn create_session(&self, s: &Session) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, auth_time, sid, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(s.id_hash.as_bytes())
        .bind(s.user_id.as_str())
        .bind(s.auth_time.secs())
        .bind(s.sid.as_str())
        .bind(s.expires_at.secs())
        .execute(&self.writer)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn session(
        &self,
        id_hash: &SecretHash<kind::SessionToken>,
        now: UnixTime,
    ) -> Result<Option<Session>> {
        let row = sqlx::query("SELECT * FROM sessions WHERE id_hash = $1 AND expires_at > $2")
            .bind(id_hash.as_bytes())
            .bind(now.secs())
            .fetch_optional(&self.reader)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(session_from).transpose()
    }

    async fn delete_session(&self, id_hash: &SecretHash<kind::SessionToken>) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash.as_bytes())
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn end_session(
        &self,
        id_hash: &SecretHash<kind::SessionToken>,
        r: Revocation,
    ) -> Result<Option<Session>> {
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        let row = sqlx::query("SELECT * FROM sessions WHERE id_hash = $1")
            .bind(id_hash.as_bytes())
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
        let Some(session) = row.as_ref().map(session_from).transpose()? else {
            return Ok(None);
        };
        end_session_signins(&mut tx, session.sid.as_str(), r).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(Some(session))
    }

    async fn end_expired_sessions(&self, r: Revocation, limit: u32) -> Result<u64> {
        self.sessions_end_expired(r, limit).await
    }

    async fn create_txn(&self, t: &AuthTxn) -> Result<()> {
        let req = request_to_json(&t.request);
        sqlx::query(
            "INSERT INTO auth_txns (id_hash, request, csrf_hash, authenticated_user, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(t.id_hash.as_bytes())
        .bind(req)
        .bind(t.csrf_hash.as_bytes())
        .bind(t.authenticated_user.as_deref())
        .bind(t.expires_at.secs())
        .execute(&self.writer)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn txn(
        &self,
        id_hash: &SecretHash<kind::TransactionId>,
        now: UnixTime,
    ) -> Result<Option<AuthTxn>> {
        // WAL readers see every committed write, so a transaction written by one request is
        // visible to the browser's next request.
        let row = sqlx::query("SELECT * FROM auth_txns WHERE id_hash = $1 AND expires_at > $2")
            .bind(id_hash.as_bytes())
            .bind(now.secs())
            .fetch_optional(&self.reader)
            .await
            .map_err(unavailable)?;
        row.map(|r| {
            let req: String = r.try_get("request").map_err(unavailable)?;
            let request = request_from_json(&req)?;
            Ok(AuthTxn {
                id_hash: hash_col(&r, "id_hash")?,
                request,
                csrf_hash: hash_col(&r, "csrf_hash")?,
                authenticated_user: value_col_opt(&r, "authenticated_user", UserId::parse)?,
                expires_at: UnixTime(r.try_get("expires_at").map_err(unavailable)?),
            })
        })
        .transpose()
    }

    async fn set_txn_authenticated(
        &self,
        id_hash: &SecretHash<kind::TransactionId>,
        user_id: &UserId,
    ) -> Result<()> {
        let n = sqlx::query("UPDATE auth_txns SET authenticated_user = $1 WHERE id_hash = $2")
            .bind(user_id.as_str())
            .bind(id_hash.as_bytes())
            .execute(&self.writer)
            .await
            .map_err(unavailable)?
            .rows_affected();
        affected(n)
    }

    async fn delete_txn(&self, id_hash: &SecretHash<kind::TransactionId>) -> Result<()> {
        sqlx::query("DELETE FROM auth_txns WHERE id_hash = $1")
            .bind(id_hash.as_bytes())
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn consent(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
        audience: Option<&Audience>,
    ) -> Result<Option<ScopeSet>> {
        let row = sqlx::query(
            "SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2 AND audience = $3",
        )
        .bind(user_id.as_str())
        .bind(client_id.as_str())
        .bind(audience.map_or("", Audience::as_str))
        .fetch_optional(&self.reader)
        .await
        .map_err(unavailable)?;
        row.map(|r| scope_col(&r, "scope")).transpose()
    }

    async fn record_consent(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
        audience: Option<&Audience>,
        scope: &ScopeSet,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, audience, scope) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, client_id, audience) DO UPDATE SET scope = excluded.scope",
        )
        .bind(user_id.as_str())
        .bind(client_id.as_str())
        .bind(audience.map_or("", Audience::as_str))
        .bind(scope.to_wire())
        .execute(&self.writer)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn issue_code(&self, c: &Code) -> Result<()> {
        let g = &c.grant;
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO grants (id, client_id, user_id, scope, audience, auth_time, sid, nonce, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO codes (hash, grant_id, redirect_uri, redirect_uri_sent, code_challenge, \
             expires_at, used) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(c.hash.as_bytes())
        .bind(g.id.as_str())
        .bind(c.redirect_uri.as_str())
        .bind(c.redirect_uri_sent)
        .bind(c.code_challenge.as_str())
        .bind(c.expires_at.secs())
        .bind(c.used)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    async fn code(&self, hash: &SecretHash<kind::AuthorizationCode>) -> Result<Option<Code>> {
        let sql = format!(
            "SELECT c.*, {GRANT_COLS} FROM codes c JOIN grants g ON g.id = c.grant_id \
             WHERE c.hash = $1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(hash.as_bytes())
            .fetch_optional(&self.reader)
            .await
            .map_err(unavailable)?;
        row.map(|r| {
            Ok(Code {
                hash: hash_col(&r, "hash")?,
                grant: grant_from(&r)?,
                redirect_uri: RedirectUri::from_stored(r.text("redirect_uri")?),
                redirect_uri_sent: r.try_get("redirect_uri_sent").map_err(unavailable)?,
                code_challenge: CodeChallenge::from_stored(r.text("code_challenge")?),
                expires_at: UnixTime(r.try_get("expires_at").map_err(unavailable)?),
                used: r.try_get("used").map_err(unavailable)?,
            })
        })
        .transpose()
    }

    async fn redeem_code(
        &self,
        hash: &SecretHash<kind::AuthorizationCode>,
        refresh: Option<&NewRefreshToken>,
        access: &AccessTokenRecord,
    ) -> Result<Redeemed> {
        self.single_use(SingleUse::Code {
            hash: *hash,
            refresh: refresh.cloned(),
            access: access.clone(),
        })
        .await
    }

    async fn refresh_token(
        &self,
        hash: &SecretHash<kind::RefreshToken>,
    ) -> Result<Option<StoredRefreshToken>> {
        self.read_refresh_token(hash).await
    }

    async fn rotate_refresh_token(
        &self,
        old: &SecretHash<kind::RefreshToken>,
        new: &NewRefreshToken,
        access: &AccessTokenRecord,
    ) -> Result<Redeemed> {
        self.single_use(SingleUse::Refresh {
            old: *old,
            new: new.clone(),
            access: access.clone(),
        })
        .await
    }

    async fn revoke_grant(&self, grant_id: &GrantId, r: Revocation) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        let n = sqlx::query("UPDATE grants SET revoked = TRUE WHERE id = $1 AND revoked = FALSE")
            .bind(grant_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected();
        // A grant revoked twice (two replays of one refresh token) is one event.
        if n > 0 {
            log_revocation(&mut tx, r, "grant", grant_id.as_str()).await?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn revoke_access_token(&self, jti: &Jti, r: Revocation) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        let known: Option<String> =
            sqlx::query_scalar("SELECT value FROM revocations WHERE kind = 'jti' AND value = $1")
                .bind(jti.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?;
        if known.is_none() {
            log_revocation(&mut tx, r, "jti", jti.as_str()).await?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn access_token_revoked(&self, q: &RevocationQuery<'_>) -> Result<bool> {
        self.read_access_token_revoked(q).await
    }

    async fn revocations_since(&self, since: u64, limit: u32) -> Result<RevocationLog> {
        revocation_page(&self.reader, since, limit).await
    }

    async fn reserve_login_attempt(
        &self,
        rules: &[ThrottleRule],
        now: UnixTime,
    ) -> Result<Option<i64>> {
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        let wait = reserve_attempt(&mut tx, rules, now).await?;
        if wait.is_none() {
            tx.commit().await.map_err(unavailable)?;
        }
        Ok(wait)
    }

    async fn clear_login_failures(&self, key: &ThrottleKey) -> Result<()> {
        sqlx::query("DELETE FROM login_failures WHERE key = $1")
            .bind(key.as_str())
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn refund_login_attempt(&self, keys: &[ThrottleKey]) -> Result<()> {
        self.refund_attempt(keys).await
    }

    async fn due_logout_deliveries(
        &self,
        now: UnixTime,
        limit: u32,
    ) -> Result<Vec<LogoutDelivery>> {
        self.deliveries_due(now, limit).await
    }

    async fn claim_logout_delivery(
        &self,
        id: &str,
        now: UnixTime,
        lease_until: UnixTime,
    ) -> Result<bool> {
        self.deliveries_claim(id, now, lease_until).await
    }

    async fn finish_logout_delivery(&self, id: &str, outcome: &DeliveryOutcome) -> Result<()> {
        self.deliveries_finish(id, outcome).await
    }

    async fn list_logout_deliveries(&self, limit: u32) -> Result<Vec<LogoutDelivery>> {
        self.deliveries_list(limit).await
    }

    async fn create_device_authorization(&self, d: &DeviceAuthorization) -> Result<()> {
        self.device_create(d).await
    }

    async fn device_authorization(
        &self,
        user_code: &SecretHash<kind::UserCode>,
        now: UnixTime,
    ) -> Result<Option<DeviceAuthorization>> {
        self.device_by_user_code(user_code, now).await
    }

    async fn decide_device_authorization(
        &self,
        user_code: &SecretHash<kind::UserCode>,
        decision: DeviceDecision<'_>,
        now: UnixTime,
    ) -> Result<bool> {
        self.device_decide(user_code, decision, now).await
    }

    async fn poll_device_code(
        &self,
        hash: &SecretHash<kind::DeviceCode>,
        client_id: &ClientId,
        now: UnixTime,
    ) -> Result<Option<DevicePoll>> {
        self.device_poll(hash, client_id, now).await
    }

    async fn redeem_device_code(
        &self,
        hash: &SecretHash<kind::DeviceCode>,
        refresh: Option<&NewRefreshToken>,
        access: &AccessTokenRecord,
    ) -> Result<Redeemed> {
        self.device_redeem(hash, refresh, access).await
    }

    async fn purge_expired(&self, now: UnixTime) -> Result<u64> {
        self.purge(now).await
    }
}
