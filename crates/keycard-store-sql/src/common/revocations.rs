// The revocation log and what ends a user's or a session's sign-ins, for both SQL backends:
// appending an event with the next sequence number, revoking a user's grants and sessions, and
// queueing the back-channel logout deliveries of the clients involved. Each function runs inside
// the caller's write transaction, so the revocation, its event and its deliveries commit
// together. Each backend module `include!`s this file after defining `DbConn`.
//
// Entry points: `log_revocation`, `end_user_signins`, `end_session_signins`, `revocation_page`.
//
// Invariant: sequence numbers follow commit order with no gap. Taking the next number updates
// the one row of `revocation_seq`, whose lock is held until commit: a concurrent revocation waits
// for it, and a rolled-back one gives its number back.
//
// Not here: the hot read that consults the log (`SQL_ACCESS_TOKEN_REVOKED` in `rows.rs`).

/// Appends one event to the revocation log.
async fn log_revocation(conn: &mut DbConn, r: Revocation, kind: &str, value: &str) -> Result<()> {
    sqlx::query("UPDATE revocation_seq SET last = last + 1 WHERE id = 1")
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
    let seq: i64 = sqlx::query_scalar("SELECT last FROM revocation_seq WHERE id = 1")
        .fetch_one(&mut *conn)
        .await
        .map_err(unavailable)?;
    sqlx::query(
        "INSERT INTO revocations (seq, at, until, kind, value) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(seq)
    .bind(r.at.secs())
    .bind(r.until.secs())
    .bind(kind)
    .bind(value)
    .execute(&mut *conn)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// Queues a back-channel logout for every client with a registered logout URI that holds a
/// grant of the given user ($1) — live, or made in one of their current sessions — one per
/// client and session. Runs before the grants are revoked.
const SQL_QUEUE_USER_LOGOUTS: &str = "INSERT INTO logout_deliveries \
     (id, client_id, uri, sub, sid, created_at, next_attempt_at, attempts) \
     SELECT DISTINCT g.client_id || ' ' || COALESCE(g.sid, '-') || ' ' || g.user_id || ' ' || $2, \
     g.client_id, c.backchannel_logout_uri, g.user_id, g.sid, $3, $3, 0 \
     FROM grants g JOIN clients c ON c.id = g.client_id \
     WHERE g.user_id = $1 AND c.backchannel_logout_uri IS NOT NULL \
     AND (c.backchannel_logout_session_required = FALSE OR g.sid IS NOT NULL) \
     AND (g.revoked = FALSE OR g.sid IN (SELECT sid FROM sessions WHERE user_id = $1)) \
     ON CONFLICT (id) DO NOTHING";

/// The same for the clients that took part in one browser session ($1 = its sid).
const SQL_QUEUE_SESSION_LOGOUTS: &str = "INSERT INTO logout_deliveries \
     (id, client_id, uri, sub, sid, created_at, next_attempt_at, attempts) \
     SELECT DISTINCT g.client_id || ' ' || g.sid || ' ' || g.user_id || ' ' || $2, \
     g.client_id, c.backchannel_logout_uri, g.user_id, g.sid, $3, $3, 0 \
     FROM grants g JOIN clients c ON c.id = g.client_id \
     WHERE g.sid = $1 AND c.backchannel_logout_uri IS NOT NULL \
     ON CONFLICT (id) DO NOTHING";

/// Ends everything a user signed in to: queues the back-channel logouts, ends their sessions,
/// revokes their grants (their refresh tokens and the access tokens issued from them) and logs
/// one `sub` event, which also reaches tokens the log's consumers validate locally.
async fn end_user_signins(conn: &mut DbConn, user_id: &str, r: Revocation) -> Result<()> {
    sqlx::query(SQL_QUEUE_USER_LOGOUTS)
        .bind(user_id)
        .bind(r.at.secs().to_string())
        .bind(r.at.secs())
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
    for sql in [
        "DELETE FROM sessions WHERE user_id = $1",
        "UPDATE grants SET revoked = TRUE WHERE user_id = $1",
    ] {
        sqlx::query(sql)
            .bind(user_id)
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
    }
    log_revocation(conn, r, "sub", user_id).await
}

/// Ends one browser session (logout): queues the back-channel logouts of its clients, revokes
/// the grants made in it that did not ask for `offline_access` (each with a `grant` event),
/// deletes the session and logs a `sid` event.
async fn end_session_signins(conn: &mut DbConn, sid: &str, r: Revocation) -> Result<()> {
    sqlx::query(SQL_QUEUE_SESSION_LOGOUTS)
        .bind(sid)
        .bind(r.at.secs().to_string())
        .bind(r.at.secs())
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
    let grants: Vec<(String, String)> =
        sqlx::query_as("SELECT id, scope FROM grants WHERE sid = $1 AND revoked = FALSE")
            .bind(sid)
            .fetch_all(&mut *conn)
            .await
            .map_err(unavailable)?;
    for (id, scope) in grants {
        let offline = ScopeSet::parse(&scope)
            .map_err(|_| corrupt("scope column"))?
            .contains("offline_access");
        if offline {
            continue;
        }
        sqlx::query("UPDATE grants SET revoked = TRUE WHERE id = $1")
            .bind(&id)
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
        log_revocation(conn, r, "grant", &id).await?;
    }
    sqlx::query("DELETE FROM sessions WHERE sid = $1")
        .bind(sid)
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
    log_revocation(conn, r, "sid", sid).await
}

/// The log after `since`, at most `limit` events, with its bounds. The bounds are read first
/// and the events only up to them: `last` is committed together with every event up to it (see
/// the invariant above), so a consumer that resumes after `last` misses nothing.
async fn revocation_page(pool: &sqlx::Pool<Db>, since: u64, limit: u32) -> Result<RevocationLog> {
    let (last, oldest): (i64, Option<i64>) = sqlx::query_as(
        "SELECT s.last, (SELECT MIN(seq) FROM revocations) FROM revocation_seq s WHERE s.id = 1",
    )
    .fetch_one(pool)
    .await
    .map_err(unavailable)?;
    let since = i64::try_from(since).unwrap_or(i64::MAX);
    let rows =
        sqlx::query("SELECT * FROM revocations WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3")
            .bind(since)
            .bind(last)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(unavailable)?;
    let last = u64::try_from(last).map_err(|_| corrupt("revocation_seq"))?;
    Ok(RevocationLog {
        events: rows.iter().map(revocation_from).collect::<Result<_>>()?,
        last,
        oldest: oldest
            .and_then(|o| u64::try_from(o).ok())
            .unwrap_or(last.saturating_add(1)),
    })
}
