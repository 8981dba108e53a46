// Row mapping for both SQL backends: how each record is read from its columns (and how list
// columns are encoded), plus the two hot reads each backend runs on its own read path. Each
// backend module `include!`s this file after defining `DbRow`, so the same text compiles against
// each driver's concrete row type.
//
// Entry points: the `*_from` functions, which map a row to a record; the `Columns` trait, which
// the SQLite backend also implements for rusqlite's row so its hot-path threads share this
// mapping; `GRANT_COLS`, `SQL_REFRESH_TOKEN` and `SQL_ACCESS_TOKEN_REVOKED`.
//
// Invariant: no I/O; a row already fetched is mapped, and a hash, scope, id, list or key state
// that does not parse is `StoreError::Corrupt`.
//
// Not here: the `Store` operations (`store.rs`) and the single-use redemptions (`single_use.rs`).

fn json_list<T: AsRef<str>>(v: &[T]) -> String {
    let v: Vec<&str> = v.iter().map(AsRef::as_ref).collect();
    serde_json::to_string(&v).unwrap_or_else(|_| "[]".to_owned())
}

fn parse_list(s: &str) -> Result<Vec<String>> {
    serde_json::from_str(s).map_err(|_| corrupt("list column"))
}

/// Typed column access by name. Implemented for the sqlx row here and, by the SQLite backend,
/// for rusqlite's row (its hot-path threads), so a record read by both drivers is mapped once.
trait Columns {
    fn text(&self, col: &str) -> Result<String>;
    fn text_opt(&self, col: &str) -> Result<Option<String>>;
    fn int(&self, col: &str) -> Result<i64>;
    fn flag(&self, col: &str) -> Result<bool>;
    fn bytes(&self, col: &str) -> Result<Vec<u8>>;
}

impl Columns for DbRow {
    fn text(&self, col: &str) -> Result<String> {
        self.try_get(col).map_err(unavailable)
    }
    fn text_opt(&self, col: &str) -> Result<Option<String>> {
        self.try_get(col).map_err(unavailable)
    }
    fn int(&self, col: &str) -> Result<i64> {
        self.try_get(col).map_err(unavailable)
    }
    fn flag(&self, col: &str) -> Result<bool> {
        self.try_get(col).map_err(unavailable)
    }
    fn bytes(&self, col: &str) -> Result<Vec<u8>> {
        self.try_get(col).map_err(unavailable)
    }
}

fn hash_col(row: &impl Columns, col: &str) -> Result<TokenHash> {
    TokenHash::from_slice(&row.bytes(col)?).ok_or_else(|| corrupt("hash column"))
}

fn scope_col(row: &impl Columns, col: &str) -> Result<ScopeSet> {
    ScopeSet::parse(&row.text(col)?).map_err(|_| corrupt("scope column"))
}

fn user_from(row: &DbRow) -> Result<User> {
    Ok(User {
        id: row.try_get("id").map_err(unavailable)?,
        username: row.try_get("username").map_err(unavailable)?,
        password_hash: row.try_get("password_hash").map_err(unavailable)?,
        name: row.try_get("name").map_err(unavailable)?,
        given_name: row.try_get("given_name").map_err(unavailable)?,
        family_name: row.try_get("family_name").map_err(unavailable)?,
        picture: row.try_get("picture").map_err(unavailable)?,
        email: row.try_get("email").map_err(unavailable)?,
        email_verified: row.try_get("email_verified").map_err(unavailable)?,
        disabled: row.try_get("disabled").map_err(unavailable)?,
        created_at: UnixTime(row.try_get("created_at").map_err(unavailable)?),
    })
}

fn client_from(row: &DbRow) -> Result<Client> {
    let secret: Option<Vec<u8>> = row.try_get("secret_hash").map_err(unavailable)?;
    let secret_hash = match secret {
        Some(b) => Some(TokenHash::from_slice(&b).ok_or_else(|| corrupt("client secret hash"))?),
        None => None,
    };
    let id: String = row.try_get("id").map_err(unavailable)?;
    let grants = parse_list(
        &row.try_get::<String, _>("grant_types")
            .map_err(unavailable)?,
    )?;
    Ok(Client {
        id: ClientId::parse(&id).map_err(|_| corrupt("client id"))?,
        name: row.try_get("name").map_err(unavailable)?,
        secret_hash,
        redirect_uris: parse_list(
            &row.try_get::<String, _>("redirect_uris")
                .map_err(unavailable)?,
        )?
        .into_iter()
        .map(RedirectUri::from_stored)
        .collect(),
        grant_types: grants.iter().filter_map(|g| GrantType::parse(g)).collect(),
        scopes: scope_col(row, "scopes")?,
        audiences: parse_list(&row.try_get::<String, _>("audiences").map_err(unavailable)?)?,
        first_party: row.try_get("first_party").map_err(unavailable)?,
    })
}

fn api_from(row: &DbRow) -> Result<Api> {
    Ok(Api {
        identifier: row.try_get("identifier").map_err(unavailable)?,
        name: row.try_get("name").map_err(unavailable)?,
        scopes: scope_col(row, "scopes")?,
        access_token_ttl_secs: row.try_get("access_token_ttl").map_err(unavailable)?,
    })
}

fn key_from(row: &DbRow) -> Result<StoredKey> {
    let state: String = row.try_get("state").map_err(unavailable)?;
    Ok(StoredKey {
        kid: row.try_get("kid").map_err(unavailable)?,
        alg: row.try_get("alg").map_err(unavailable)?,
        private_key_enc: row.try_get("private_key_enc").map_err(unavailable)?,
        state: KeyState::parse(&state).ok_or_else(|| corrupt("key state"))?,
        created_at: UnixTime(row.try_get("created_at").map_err(unavailable)?),
        retire_until: row
            .try_get::<Option<i64>, _>("retire_until")
            .map_err(unavailable)?
            .map(UnixTime),
    })
}

macro_rules! grant_cols {
    () => {
        "g.id AS g_id, g.client_id AS g_client_id, g.user_id AS g_user_id, g.scope AS g_scope, \
         g.audience AS g_audience, g.auth_time AS g_auth_time, g.sid AS g_sid, g.nonce AS g_nonce, \
         g.created_at AS g_created_at, g.revoked AS g_revoked"
    };
}
const GRANT_COLS: &str = grant_cols!();

fn grant_from(row: &impl Columns) -> Result<Grant> {
    Ok(Grant {
        id: row.text("g_id")?,
        client_id: row.text("g_client_id")?,
        user_id: row.text("g_user_id")?,
        scope: scope_col(row, "g_scope")?,
        audience: row.text_opt("g_audience")?,
        auth_time: UnixTime(row.int("g_auth_time")?),
        sid: row.text_opt("g_sid")?,
        nonce: row.text_opt("g_nonce")?,
        created_at: UnixTime(row.int("g_created_at")?),
    })
}

/// A refresh token with its grant and its user's state, in one query.
const SQL_REFRESH_TOKEN: &str = concat!(
    "SELECT r.hash, r.scope, r.expires_at, r.used, ",
    grant_cols!(),
    ", (u.id IS NOT NULL AND u.disabled = FALSE) AS user_active FROM refresh_tokens r \
     JOIN grants g ON g.id = r.grant_id LEFT JOIN users u ON u.id = g.user_id WHERE r.hash = $1"
);

fn refresh_token_from(r: &impl Columns) -> Result<RefreshToken> {
    Ok(RefreshToken {
        hash: hash_col(r, "hash")?,
        grant: grant_from(r)?,
        scope: scope_col(r, "scope")?,
        expires_at: UnixTime(r.int("expires_at")?),
        used: r.flag("used")?,
        grant_revoked: r.flag("g_revoked")?,
        user_active: r.flag("user_active")?,
    })
}

/// Whether an access token is revoked: by `jti` ($1), through its grant ($2, when given:
/// revoked or gone) or through its user ($3, when given: disabled or gone).
const SQL_ACCESS_TOKEN_REVOKED: &str = "SELECT EXISTS \
     (SELECT 1 FROM revoked_access_tokens WHERE jti = $1) \
     OR ($2 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM grants WHERE id = $2 AND revoked = FALSE)) \
     OR ($3 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM users WHERE id = $3 AND disabled = FALSE))";
