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

fn json_list<T: std::ops::Deref<Target = str>>(v: &[T]) -> String {
    let v: Vec<&str> = v.iter().map(|s| &**s).collect();
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
    fn int_opt(&self, col: &str) -> Result<Option<i64>>;
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
    fn int_opt(&self, col: &str) -> Result<Option<i64>> {
        self.try_get(col).map_err(unavailable)
    }
    fn flag(&self, col: &str) -> Result<bool> {
        self.try_get(col).map_err(unavailable)
    }
    fn bytes(&self, col: &str) -> Result<Vec<u8>> {
        self.try_get(col).map_err(unavailable)
    }
}

fn hash_col<K: SecretKind>(row: &impl Columns, col: &str) -> Result<SecretHash<K>> {
    SecretHash::from_slice(&row.bytes(col)?).ok_or_else(|| corrupt("hash column"))
}

fn scope_col(row: &impl Columns, col: &str) -> Result<ScopeSet> {
    ScopeSet::parse(&row.text(col)?).map_err(|_| corrupt("scope column"))
}

/// A text column parsed into its protocol value; a value that does not parse is corrupt data.
fn value_col<T>(
    row: &impl Columns,
    col: &str,
    parse: impl FnOnce(&str) -> std::result::Result<T, OAuthError>,
) -> Result<T> {
    parse(&row.text(col)?).map_err(|_| corrupt(col))
}

fn value_col_opt<T>(
    row: &impl Columns,
    col: &str,
    parse: impl FnOnce(&str) -> std::result::Result<T, OAuthError>,
) -> Result<Option<T>> {
    row.text_opt(col)?
        .map(|v| parse(&v).map_err(|_| corrupt(col)))
        .transpose()
}

fn user_from(row: &DbRow) -> Result<User> {
    Ok(User {
        id: value_col(row, "id", UserId::parse)?,
        username: value_col(row, "username", Username::parse)?,
        password_hash: PasswordHash::from_phc(row.text("password_hash")?),
        name: row.text_opt("name")?,
        given_name: row.text_opt("given_name")?,
        family_name: row.text_opt("family_name")?,
        picture: row.text_opt("picture")?,
        email: row.text_opt("email")?,
        email_verified: row.flag("email_verified")?,
        disabled: row.flag("disabled")?,
        created_at: UnixTime(row.int("created_at")?),
    })
}

fn client_from(row: &DbRow) -> Result<Client> {
    let secret: Option<Vec<u8>> = row.try_get("secret_hash").map_err(unavailable)?;
    let secret_hash = match secret {
        Some(b) => Some(SecretHash::from_slice(&b).ok_or_else(|| corrupt("client secret hash"))?),
        None => None,
    };
    let grants = parse_list(&row.text("grant_types")?)?;
    let audiences = parse_list(&row.text("audiences")?)?
        .iter()
        .map(|a| Audience::parse(a).map_err(|_| corrupt("audiences")))
        .collect::<Result<Vec<_>>>()?;
    let resource_servers = parse_list(&row.text("resource_servers")?)?
        .iter()
        .map(|a| Audience::parse(a).map_err(|_| corrupt("resource_servers")))
        .collect::<Result<Vec<_>>>()?;
    let backchannel_logout = row
        .text_opt("backchannel_logout_uri")?
        .map(|uri| -> Result<BackchannelLogout> {
            Ok(BackchannelLogout {
                uri,
                session_required: row.flag("backchannel_logout_session_required")?,
            })
        })
        .transpose()?;
    Ok(Client {
        id: value_col(row, "id", ClientId::parse)?,
        name: row.text("name")?,
        secret_hash,
        redirect_uris: parse_list(&row.text("redirect_uris")?)?
            .into_iter()
            .map(RedirectUri::from_stored)
            .collect(),
        grant_types: grants.iter().filter_map(|g| GrantType::parse(g)).collect(),
        scopes: scope_col(row, "scopes")?,
        audiences,
        first_party: row.flag("first_party")?,
        resource_servers,
        feed: row.flag("feed")?,
        post_logout_redirect_uris: parse_list(&row.text("post_logout_redirect_uris")?)?
            .into_iter()
            .map(RedirectUri::from_stored)
            .collect(),
        backchannel_logout,
    })
}

fn api_from(row: &DbRow) -> Result<Api> {
    Ok(Api {
        identifier: value_col(row, "identifier", Audience::parse)?,
        name: row.text("name")?,
        scopes: scope_col(row, "scopes")?,
        access_token_ttl_secs: row.int("access_token_ttl")?,
    })
}

fn key_from(row: &DbRow) -> Result<StoredKey> {
    let state: String = row.try_get("state").map_err(unavailable)?;
    Ok(StoredKey {
        kid: value_col(row, "kid", Kid::parse)?,
        alg: row.try_get("alg").map_err(unavailable)?,
        private_key_enc: row.try_get("private_key_enc").map_err(unavailable)?,
        state: KeyState::parse(&state).ok_or_else(|| corrupt("key state"))?,
        created_at: UnixTime(row.try_get("created_at").map_err(unavailable)?),
        retire_until: row
            .try_get::<Option<i64>, _>("retire_until")
            .map_err(unavailable)?
            .map(UnixTime),
        activated_at: row
            .try_get::<Option<i64>, _>("activated_at")
            .map_err(unavailable)?
            .map(UnixTime),
    })
}

macro_rules! grant_cols {
    () => {
        "g.id AS g_id, g.client_id AS g_client_id, g.user_id AS g_user_id, g.scope AS g_scope, \
         g.audience AS g_audience, g.auth_time AS g_auth_time, g.sid AS g_sid, g.nonce AS g_nonce, \
         g.created_at AS g_created_at, g.revoked AS g_revoked, g.expires_at AS g_expires_at"
    };
}
const GRANT_COLS: &str = grant_cols!();

fn grant_from(row: &impl Columns) -> Result<Grant> {
    Ok(Grant {
        id: value_col(row, "g_id", GrantId::parse)?,
        client_id: value_col(row, "g_client_id", ClientId::parse)?,
        user_id: value_col(row, "g_user_id", UserId::parse)?,
        scope: scope_col(row, "g_scope")?,
        audience: value_col_opt(row, "g_audience", Audience::parse)?,
        auth_time: UnixTime(row.int("g_auth_time")?),
        sid: value_col_opt(row, "g_sid", SessionId::parse)?,
        nonce: value_col_opt(row, "g_nonce", Nonce::parse)?,
        created_at: UnixTime(row.int("g_created_at")?),
        expires_at: row.int_opt("g_expires_at")?.map(UnixTime),
    })
}

/// A refresh token with its grant and its user's state, in one query.
const SQL_REFRESH_TOKEN: &str = concat!(
    "SELECT r.hash, r.scope, r.expires_at, r.used, ",
    grant_cols!(),
    ", (u.id IS NOT NULL AND u.disabled = FALSE) AS user_active FROM refresh_tokens r \
     JOIN grants g ON g.id = r.grant_id LEFT JOIN users u ON u.id = g.user_id WHERE r.hash = $1"
);

fn refresh_token_from(r: &impl Columns) -> Result<StoredRefreshToken> {
    Ok(StoredRefreshToken {
        hash: hash_col(r, "hash")?,
        grant: grant_from(r)?,
        scope: scope_col(r, "scope")?,
        expires_at: UnixTime(r.int("expires_at")?),
        used: r.flag("used")?,
        grant_revoked: r.flag("g_revoked")?,
        user_active: r.flag("user_active")?,
    })
}

/// Whether an access token is revoked: by `jti` ($1) in the revocation log; through its grant
/// ($2, when given: revoked or gone); through its user ($3, when given: disabled or gone, or a
/// `sub` event since it was issued, $5); through its client ($4: gone, or a `client` event since
/// it was issued). One query on the introspection path; each test is an index lookup. The
/// parameters first appear in order, as rusqlite binds them.
const SQL_ACCESS_TOKEN_REVOKED: &str = "SELECT EXISTS \
     (SELECT 1 FROM revocations WHERE kind = 'jti' AND value = $1) \
     OR ($2 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM grants WHERE id = $2 AND revoked = FALSE)) \
     OR ($3 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM users WHERE id = $3 AND disabled = FALSE)) \
     OR NOT EXISTS (SELECT 1 FROM clients WHERE id = $4) \
     OR EXISTS (SELECT 1 FROM revocations WHERE kind = 'sub' AND value = $3 AND at >= $5) \
     OR EXISTS (SELECT 1 FROM revocations WHERE kind = 'client' AND value = $4 AND at >= $5)";

fn session_from(r: &DbRow) -> Result<Session> {
    Ok(Session {
        id_hash: hash_col(r, "id_hash")?,
        user_id: value_col(r, "user_id", UserId::parse)?,
        auth_time: UnixTime(r.int("auth_time")?),
        sid: value_col(r, "sid", SessionId::parse)?,
        expires_at: UnixTime(r.int("expires_at")?),
    })
}

fn revocation_from(row: &DbRow) -> Result<RevocationEvent> {
    Ok(RevocationEvent {
        seq: u64::try_from(row.int("seq")?).map_err(|_| corrupt("revocation seq"))?,
        at: UnixTime(row.int("at")?),
        until: UnixTime(row.int("until")?),
        kind: RevocationKind::parse(&row.text("kind")?),
        value: row.text("value")?,
    })
}

fn delivery_from(row: &DbRow) -> Result<LogoutDelivery> {
    Ok(LogoutDelivery {
        id: row.text("id")?,
        client_id: value_col(row, "client_id", ClientId::parse)?,
        uri: row.text("uri")?,
        sub: value_col(row, "sub", UserId::parse)?,
        sid: value_col_opt(row, "sid", SessionId::parse)?,
        created_at: UnixTime(row.int("created_at")?),
        next_attempt_at: UnixTime(row.int("next_attempt_at")?),
        attempts: row.int("attempts")?,
        delivered_at: row.int_opt("delivered_at")?.map(UnixTime),
        last_error: row.text_opt("last_error")?,
    })
}

/// The stored shape of a pending authorization request (the `auth_txns.request` JSON column),
/// private to this crate: the protocol type stays free of storage concerns, and a change of
/// either side is a visible edit here.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredRequest {
    client_id: String,
    redirect_uri: String,
    redirect_uri_sent: bool,
    state: Option<String>,
    nonce: Option<String>,
    scope: String,
    audience: Option<String>,
    code_challenge: String,
    prompt: StoredPrompt,
    max_age: Option<i64>,
    login_hint: Option<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredPrompt {
    none: bool,
    login: bool,
    consent: bool,
}

fn request_to_json(r: &AuthorizeRequest) -> String {
    let stored = StoredRequest {
        client_id: r.client_id.to_string(),
        redirect_uri: r.redirect_uri.as_str().to_owned(),
        redirect_uri_sent: r.redirect_uri_sent,
        state: r.state.as_ref().map(ToString::to_string),
        nonce: r.nonce.as_ref().map(ToString::to_string),
        scope: r.scope.to_wire(),
        audience: r.audience.as_ref().map(ToString::to_string),
        code_challenge: r.code_challenge.as_str().to_owned(),
        prompt: StoredPrompt {
            none: r.prompt.none,
            login: r.prompt.login,
            consent: r.prompt.consent,
        },
        max_age: r.max_age.map(MaxAge::secs),
        login_hint: r.login_hint.as_ref().map(ToString::to_string),
    };
    serde_json::to_string(&stored).unwrap_or_default()
}

fn request_from_json(s: &str) -> Result<AuthorizeRequest> {
    let r: StoredRequest = serde_json::from_str(s).map_err(|_| corrupt("stored request"))?;
    let bad = |_| corrupt("stored authorization request");
    Ok(AuthorizeRequest {
        client_id: ClientId::parse(&r.client_id).map_err(bad)?,
        redirect_uri: RedirectUri::from_stored(r.redirect_uri),
        redirect_uri_sent: r.redirect_uri_sent,
        state: r
            .state
            .as_deref()
            .map(State::parse)
            .transpose()
            .map_err(bad)?,
        nonce: r
            .nonce
            .as_deref()
            .map(Nonce::parse)
            .transpose()
            .map_err(bad)?,
        scope: ScopeSet::parse(&r.scope).map_err(bad)?,
        audience: r
            .audience
            .as_deref()
            .map(Audience::parse)
            .transpose()
            .map_err(bad)?,
        code_challenge: CodeChallenge::from_stored(r.code_challenge),
        prompt: Prompt {
            none: r.prompt.none,
            login: r.prompt.login,
            consent: r.prompt.consent,
        },
        max_age: r.max_age.map(MaxAge::from_secs).transpose().map_err(bad)?,
        login_hint: r
            .login_hint
            .as_deref()
            .map(LoginHint::parse)
            .transpose()
            .map_err(bad)?,
    })
}
