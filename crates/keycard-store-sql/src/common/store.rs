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
// Not here: row mapping (`rows.rs`) and the redemption statements (`single_use.rs`).

/// Slices of 1,000 grants checked for orphans per janitor run.
const GRANT_SWEEP_SLICES: usize = 10;

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
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, name, given_name, family_name, \
             picture, email, email_verified, disabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(u.id.as_str())
        .bind(u.username.as_str())
        .bind(u.password_hash.as_phc())
        .bind(&u.name)
        .bind(&u.given_name)
        .bind(&u.family_name)
        .bind(&u.picture)
        .bind(&u.email)
        .bind(u.email_verified)
        .bind(u.disabled)
        .bind(u.created_at.secs())
        .execute(&self.writer)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn user_by_username(&self, username: &Username) -> Result<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE username = $1")
            .bind(username.as_str())
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

    async fn remove_user(&self, username: &Username) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        let id: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
            .bind(username.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
        let id = id.ok_or(StoreError::NotFound)?;
        for sql in [
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM consents WHERE user_id = $1",
            "UPDATE grants SET revoked = TRUE WHERE user_id = $1",
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

    async fn set_password(&self, username: &Username, hash: &PasswordHash) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        let n = sqlx::query("UPDATE users SET password_hash = $1 WHERE username = $2")
            .bind(hash.as_phc())
            .bind(username.as_str())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected();
        affected(n)?;
        sqlx::query(
            "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = $1)",
        )
        .bind(username.as_str())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    async fn set_user_disabled(&self, username: &Username, disabled: bool) -> Result<()> {
        let n = sqlx::query("UPDATE users SET disabled = $1 WHERE username = $2")
            .bind(disabled)
            .bind(username.as_str())
            .execute(&self.writer)
            .await
            .map_err(unavailable)?
            .rows_affected();
        affected(n)
    }

    async fn create_client(&self, c: &Client, now: UnixTime) -> Result<()> {
        let redirects: Vec<&str> = c.redirect_uris.iter().map(RedirectUri::as_str).collect();
        let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
        sqlx::query(
            "INSERT INTO clients (id, name, secret_hash, redirect_uris, grant_types, scopes, \
             audiences, first_party, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
        .execute(&self.writer)
        .await
        .map_err(unavailable)?;
        Ok(())
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

    async fn remove_client(&self, id: &ClientId) -> Result<()> {
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
            "INSERT INTO signing_keys (kid, alg, private_key_enc, state, created_at, retire_until) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(k.kid.as_str())
        .bind(&k.alg)
        .bind(&k.private_key_enc)
        .bind(k.state.as_str())
        .bind(k.created_at.secs())
        .bind(k.retire_until.map(UnixTime::secs))
        .execute(&self.writer)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn rotate_keys(&self, new_next: &StoredKey, retire_until: UnixTime) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        sqlx::query(
            "UPDATE signing_keys SET state = 'retired', retire_until = $1 WHERE state = 'active'",
        )
        .bind(retire_until.secs())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        sqlx::query("UPDATE signing_keys SET state = 'active' WHERE state = 'next'")
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_key_enc, state, created_at, retire_until) \
             VALUES ($1, $2, $3, 'next', $4, NULL)",
        )
        .bind(new_next.kid.as_str())
        .bind(&new_next.alg)
        .bind(&new_next.private_key_enc)
        .bind(new_next.created_at.secs())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
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
        row.map(|r| {
            Ok(Session {
                id_hash: hash_col(&r, "id_hash")?,
                user_id: value_col(&r, "user_id", UserId::parse)?,
                auth_time: UnixTime(r.try_get("auth_time").map_err(unavailable)?),
                sid: value_col(&r, "sid", SessionId::parse)?,
                expires_at: UnixTime(r.try_get("expires_at").map_err(unavailable)?),
            })
        })
        .transpose()
    }

    async fn delete_session(&self, id_hash: &SecretHash<kind::SessionToken>) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash.as_bytes())
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
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

    async fn consent(&self, user_id: &UserId, client_id: &ClientId) -> Result<Option<ScopeSet>> {
        let row = sqlx::query("SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id.as_str())
            .bind(client_id.as_str())
            .fetch_optional(&self.reader)
            .await
            .map_err(unavailable)?;
        row.map(|r| scope_col(&r, "scope")).transpose()
    }

    async fn record_consent(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
        scope: &ScopeSet,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scope) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope",
        )
        .bind(user_id.as_str())
        .bind(client_id.as_str())
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
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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

    async fn revoke_grant(&self, grant_id: &GrantId) -> Result<()> {
        sqlx::query("UPDATE grants SET revoked = TRUE WHERE id = $1")
            .bind(grant_id.as_str())
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn revoke_access_token(&self, jti: &Jti, expires_at: UnixTime) -> Result<()> {
        sqlx::query(
            "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti.as_str())
        .bind(expires_at.secs())
        .execute(&self.writer)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn access_token_revoked(
        &self,
        jti: &Jti,
        grant: Option<&GrantId>,
        user: Option<&UserId>,
    ) -> Result<bool> {
        self.read_access_token_revoked(jti, grant, user).await
    }

    async fn login_lock(
        &self,
        account_key: &ThrottleKey,
        ip_key: &ThrottleKey,
        now: UnixTime,
    ) -> Result<i64> {
        let until: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(locked_until) FROM login_failures WHERE key = $1 OR key = $2",
        )
        .bind(account_key.as_str())
        .bind(ip_key.as_str())
        .fetch_one(&self.reader)
        .await
        .map_err(unavailable)?;
        Ok(until.map_or(0, |u| (u - now.secs()).max(0)))
    }

    async fn record_login_failure(
        &self,
        key: &ThrottleKey,
        now: UnixTime,
        policy: fn(i64) -> i64,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        // The upsert increments atomically (it holds the row lock until commit), so concurrent
        // failures on several nodes are all counted.
        sqlx::query(
            "INSERT INTO login_failures (key, failures, locked_until, last_at) \
             VALUES ($1, 1, 0, $2) \
             ON CONFLICT (key) DO UPDATE SET failures = login_failures.failures + 1, last_at = $2",
        )
        .bind(key.as_str())
        .bind(now.secs())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        let failures: i64 =
            sqlx::query_scalar("SELECT failures FROM login_failures WHERE key = $1")
                .bind(key.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(unavailable)?;
        let lock = policy(failures);
        if lock > 0 {
            sqlx::query("UPDATE login_failures SET locked_until = $1 WHERE key = $2")
                .bind(now.secs() + lock)
                .bind(key.as_str())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn clear_login_failures(&self, key: &ThrottleKey) -> Result<()> {
        sqlx::query("DELETE FROM login_failures WHERE key = $1")
            .bind(key.as_str())
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn purge_expired(&self, now: UnixTime) -> Result<u64> {
        let mut total = 0;
        for (table, key) in [
            ("codes", "hash"),
            ("refresh_tokens", "hash"),
            ("revoked_access_tokens", "jti"),
            ("sessions", "id_hash"),
            ("auth_txns", "id_hash"),
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
