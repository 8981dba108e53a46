// Every `BffStore` operation of both SQL backends, written once in the portable SQL subset with
// `$N` placeholders (which sqlx accepts for SQLite and PostgreSQL alike). Each backend module
// `include!`s this file after defining `Db`, `DbRow`, `SqlStore { pool }`, `begin_write()` and
// `SELECT_SESSION_LOCKED`, so the same text compiles against each driver's concrete types.
//
// Entry point: `impl BffStore for SqlStore`.
//
// Invariant: every operation of more than one statement is one transaction from
// `begin_write()`, and single use (a login taken once) is decided by the row count of a
// `DELETE`. `cargo fmt` does not reach `include!`d files: run `rustfmt --check` on this one.

const SELECT_SESSION: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM bff_sessions WHERE id_hash = $1"
);

fn hash_from<K: SecretKind>(bytes: &[u8]) -> Result<SecretHash<K>> {
    SecretHash::from_slice(bytes).ok_or_else(|| corrupt("a hash is not 32 bytes"))
}

fn session_from(row: &DbRow) -> Result<SessionRecord> {
    let time = |c: &str| row.try_get::<i64, _>(c).map(UnixTime).map_err(unavailable);
    let text = |c: &str| row.try_get::<String, _>(c).map_err(unavailable);
    let sid = row
        .try_get::<Option<String>, _>("sid")
        .map_err(unavailable)?
        .map(|s| SessionId::parse(&s))
        .transpose()
        .map_err(|_| corrupt("sid"))?;
    Ok(SessionRecord {
        id: hash_from(&row.try_get::<Vec<u8>, _>("id_hash").map_err(unavailable)?)?,
        issuer: Issuer::from_wire(&text("issuer")?).map_err(|_| corrupt("issuer"))?,
        sub: Subject::parse(&text("sub")?).map_err(|_| corrupt("sub"))?,
        sid,
        profile: Profile {
            name: row.try_get("name").map_err(unavailable)?,
            email: row.try_get("email").map_err(unavailable)?,
        },
        tokens: row.try_get("tokens").map_err(unavailable)?,
        generation: row.try_get("generation").map_err(unavailable)?,
        access_expires_at: time("access_expires_at")?,
        created_at: time("created_at")?,
        idle_expires_at: time("idle_expires_at")?,
        expires_at: time("expires_at")?,
    })
}

fn login_from(row: &DbRow) -> Result<LoginRecord> {
    Ok(LoginRecord {
        id: hash_from(&row.try_get::<Vec<u8>, _>("id_hash").map_err(unavailable)?)?,
        sealed: row.try_get("sealed").map_err(unavailable)?,
        expires_at: UnixTime(row.try_get("expires_at").map_err(unavailable)?),
    })
}

impl BffStore for SqlStore {
    fn create_session<'a>(&'a self, s: &'a SessionRecord) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO bff_sessions (id_hash, issuer, sub, sid, name, email, tokens, \
                 generation, access_expires_at, created_at, idle_expires_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(s.id.as_bytes())
            .bind(s.issuer.as_str())
            .bind(s.sub.as_str())
            .bind(s.sid.as_ref().map(SessionId::as_str))
            .bind(s.profile.name.as_deref())
            .bind(s.profile.email.as_deref())
            .bind(s.tokens.as_slice())
            .bind(s.generation)
            .bind(s.access_expires_at.secs())
            .bind(s.created_at.secs())
            .bind(s.idle_expires_at.secs())
            .bind(s.expires_at.secs())
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
            Ok(())
        })
    }

    fn session<'a>(
        &'a self,
        id: &'a SessionHash,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>>> {
        Box::pin(async move {
            let row = sqlx::query(SELECT_SESSION)
                .bind(id.as_bytes())
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
            let session = row.as_ref().map(session_from).transpose()?;
            Ok(session.filter(|s| !s.is_expired(now)))
        })
    }

    fn touch_session<'a>(
        &'a self,
        id: &'a SessionHash,
        idle_expires_at: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE bff_sessions SET idle_expires_at = $2 \
                 WHERE id_hash = $1 AND idle_expires_at < $2",
            )
            .bind(id.as_bytes())
            .bind(idle_expires_at.secs())
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
            Ok(())
        })
    }

    fn delete_session<'a>(
        &'a self,
        id: &'a SessionHash,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>>> {
        Box::pin(async move {
            let mut tx = self.begin_write().await?;
            let row = sqlx::query(SELECT_SESSION)
                .bind(id.as_bytes())
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?;
            let session = row.as_ref().map(session_from).transpose()?;
            sqlx::query("DELETE FROM bff_sessions WHERE id_hash = $1")
                .bind(id.as_bytes())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            tx.commit().await.map_err(unavailable)?;
            Ok(session)
        })
    }

    fn end_sessions<'a>(
        &'a self,
        issuer: &'a Issuer,
        sub: Option<&'a Subject>,
        sid: Option<&'a SessionId>,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let q = match (sub, sid) {
                (Some(sub), Some(sid)) => sqlx::query(
                    "DELETE FROM bff_sessions WHERE issuer = $1 AND sub = $2 AND sid = $3",
                )
                .bind(issuer.as_str())
                .bind(sub.as_str())
                .bind(sid.as_str()),
                (Some(sub), None) => {
                    sqlx::query("DELETE FROM bff_sessions WHERE issuer = $1 AND sub = $2")
                        .bind(issuer.as_str())
                        .bind(sub.as_str())
                }
                (None, Some(sid)) => {
                    sqlx::query("DELETE FROM bff_sessions WHERE issuer = $1 AND sid = $2")
                        .bind(issuer.as_str())
                        .bind(sid.as_str())
                }
                // Naming nobody ends nobody: a logout token always names someone.
                (None, None) => return Ok(0),
            };
            let done = q.execute(&self.pool).await.map_err(unavailable)?;
            Ok(done.rows_affected())
        })
    }

    fn refresh_session<'a>(
        &'a self,
        id: &'a SessionHash,
        now: UnixTime,
        decide: DecideFn<'a>,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>>> {
        Box::pin(async move {
            let mut tx = self.begin_write().await?;
            let row = sqlx::query(SELECT_SESSION_LOCKED)
                .bind(id.as_bytes())
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?;
            let Some(session) = row.as_ref().map(session_from).transpose()? else {
                return Ok(None);
            };
            if session.is_expired(now) {
                return Ok(None);
            }
            match decide(session.clone()).await {
                RefreshDecision::Keep => {
                    tx.commit().await.map_err(unavailable)?;
                    Ok(Some(session))
                }
                RefreshDecision::Replace(update) => {
                    sqlx::query(
                        "UPDATE bff_sessions SET tokens = $2, access_expires_at = $3, \
                         generation = generation + 1 WHERE id_hash = $1",
                    )
                    .bind(id.as_bytes())
                    .bind(update.tokens.as_slice())
                    .bind(update.access_expires_at.secs())
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                    tx.commit().await.map_err(unavailable)?;
                    Ok(Some(SessionRecord {
                        tokens: update.tokens,
                        access_expires_at: update.access_expires_at,
                        generation: session.generation + 1,
                        ..session
                    }))
                }
                RefreshDecision::End => {
                    sqlx::query("DELETE FROM bff_sessions WHERE id_hash = $1")
                        .bind(id.as_bytes())
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                    tx.commit().await.map_err(unavailable)?;
                    Ok(None)
                }
            }
        })
    }

    fn put_login<'a>(&'a self, login: &'a LoginRecord) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO bff_logins (id_hash, sealed, expires_at) VALUES ($1, $2, $3)")
                .bind(login.id.as_bytes())
                .bind(login.sealed.as_slice())
                .bind(login.expires_at.secs())
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }

    fn take_login<'a>(
        &'a self,
        id: &'a LoginHash,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<LoginRecord>>> {
        Box::pin(async move {
            let mut tx = self.begin_write().await?;
            let row = sqlx::query(
                "SELECT id_hash, sealed, expires_at FROM bff_logins WHERE id_hash = $1",
            )
            .bind(id.as_bytes())
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
            let login = row.as_ref().map(login_from).transpose()?;
            let deleted = sqlx::query("DELETE FROM bff_logins WHERE id_hash = $1")
                .bind(id.as_bytes())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            tx.commit().await.map_err(unavailable)?;
            // The DELETE's row count decides the one taker, whatever the SELECT saw.
            if deleted.rows_affected() != 1 {
                return Ok(None);
            }
            Ok(login.filter(|l| now < l.expires_at))
        })
    }

    fn record_logout_jti<'a>(
        &'a self,
        issuer: &'a Issuer,
        jti: &'a Jti,
        expires_at: UnixTime,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query(
                "INSERT INTO bff_logout_jtis (issuer, jti, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(issuer.as_str())
            .bind(jti.as_str())
            .bind(expires_at.secs())
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn purge_expired(&self, now: UnixTime) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let mut gone = 0;
            for sql in [
                "DELETE FROM bff_sessions WHERE expires_at <= $1 OR idle_expires_at <= $1",
                "DELETE FROM bff_logins WHERE expires_at <= $1",
                "DELETE FROM bff_logout_jtis WHERE expires_at <= $1",
            ] {
                let done = sqlx::query(sql)
                    .bind(now.secs())
                    .execute(&self.pool)
                    .await
                    .map_err(unavailable)?;
                gone += done.rows_affected();
            }
            Ok(gone)
        })
    }
}
