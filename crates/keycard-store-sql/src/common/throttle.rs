// Login throttling for both SQL backends: reserving an attempt against several counters in one
// write transaction before the password is checked (ASVS 6.3.1; OWASP Authentication cheat
// sheet). Each backend module `include!`s this file after defining `DbConn`.
//
// Entry point: `reserve_attempt`.
//
// Invariant: the check and the count are one transaction that starts with a write (the upsert
// of every counter), so the writer's lock (SQLite) or the rows' locks (PostgreSQL) serialise
// concurrent attempts: 50 parallel wrong passwords cannot all pass a limit of 5.

/// Reserves one attempt: counts it on every rule's key and locks each key as its policy says;
/// when an applicable rule's key was already locked, rolls back and answers the wait instead.
async fn reserve_attempt(
    conn: &mut DbConn,
    rules: &[ThrottleRule],
    now: UnixTime,
) -> Result<Option<i64>> {
    let mut state = Vec::with_capacity(rules.len());
    for rule in rules {
        sqlx::query(
            "INSERT INTO login_failures (key, failures, locked_until, last_at) \
             VALUES ($1, 0, 0, $2) \
             ON CONFLICT (key) DO UPDATE SET last_at = $2",
        )
        .bind(rule.key.as_str())
        .bind(now.secs())
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
        let (failures, locked_until): (i64, i64) =
            sqlx::query_as("SELECT failures, locked_until FROM login_failures WHERE key = $1")
                .bind(rule.key.as_str())
                .fetch_one(&mut *conn)
                .await
                .map_err(unavailable)?;
        state.push((rule.key.as_str(), failures, locked_until));
    }
    let failures_of = |key: &ThrottleKey| {
        state
            .iter()
            .find(|(k, _, _)| *k == key.as_str())
            .map_or(0, |(_, f, _)| *f)
    };
    let wait = rules
        .iter()
        .zip(&state)
        .filter(|(rule, _)| {
            rule.only_if_failed
                .as_ref()
                .is_none_or(|k| failures_of(k) > 0)
        })
        .map(|(_, (_, _, locked_until))| locked_until - now.secs())
        .max()
        .unwrap_or(0);
    if wait > 0 {
        return Ok(Some(wait));
    }
    for (rule, (key, failures, _)) in rules.iter().zip(&state) {
        let failures = failures + 1;
        let lock = (rule.policy)(failures);
        sqlx::query("UPDATE login_failures SET failures = $1, locked_until = $2 WHERE key = $3")
            .bind(failures)
            .bind(if lock > 0 { now.secs() + lock } else { 0 })
            .bind(*key)
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
    }
    Ok(None)
}

impl SqlStore {
    /// Takes back one counted failure per key, never below zero; the lock a reservation set
    /// stays (it expires by itself, and earlier failures may have earned it).
    async fn refund_attempt(&self, keys: &[ThrottleKey]) -> Result<()> {
        for key in keys {
            sqlx::query(
                "UPDATE login_failures SET failures = failures - 1 WHERE key = $1 AND failures > 0",
            )
            .bind(key.as_str())
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        }
        Ok(())
    }
}
