// The single-use redemptions of both SQL backends: a code or refresh token marked used by an
// `UPDATE … WHERE used = FALSE` whose row count decides the one winner, and the statements that
// write what replaces it. Each backend module `include!`s this file; SQLite runs the statements
// on its group-commit thread through rusqlite, PostgreSQL as one statement per redemption (the
// mark wrapped in a CTE with the writes that follow it).
//
// Entry points: `SingleUse` (built by `redeem_code` and `rotate_refresh_token`) and
// `SingleUse::parts`, which each backend's redemption code executes.
//
// Not here: how a redemption is committed (each backend's `single_use`).

/// A single-use redemption: mark the code or refresh token used and write what replaces it.
/// Owned, so the SQLite backend can hand it to its group-commit writer.
#[derive(Debug)]
enum SingleUse {
    Code {
        hash: SecretHash<kind::AuthorizationCode>,
        refresh: Option<NewRefreshToken>,
        access: AccessTokenRecord,
    },
    Refresh {
        old: SecretHash<kind::RefreshToken>,
        new: NewRefreshToken,
        access: AccessTokenRecord,
    },
}

impl SingleUse {
    /// What each backend executes: the statement that marks the code or token used, the bytes
    /// of its hash, the refresh token to insert and the access token whose grant must be kept.
    fn parts(&self) -> Redemption<'_> {
        match self {
            SingleUse::Code {
                hash,
                refresh,
                access,
            } => Redemption {
                mark: SQL_MARK_CODE,
                hash: hash.as_bytes(),
                insert: refresh.as_ref(),
                access,
            },
            SingleUse::Refresh { old, new, access } => Redemption {
                mark: SQL_MARK_REFRESH,
                hash: old.as_bytes(),
                insert: Some(new),
                access,
            },
        }
    }
}

/// The statements of one redemption, as [`SingleUse::parts`] lays them out.
struct Redemption<'a> {
    mark: &'static str,
    hash: &'a [u8],
    insert: Option<&'a NewRefreshToken>,
    access: &'a AccessTokenRecord,
}

// A single-use redemption's statements, shared by both backends' redemption code (SQLite's
// runs on its group-commit thread through rusqlite, which binds `$N` by first appearance, so
// each statement names its parameters in order).

/// Marks a code used; one row changed means this redemption won.
const SQL_MARK_CODE: &str = "UPDATE codes SET used = TRUE WHERE hash = $1 AND used = FALSE";
/// Marks a refresh token used unless its grant was revoked; one row changed means this won.
const SQL_MARK_REFRESH: &str = "UPDATE refresh_tokens SET used = TRUE \
     WHERE hash = $1 AND used = FALSE \
     AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.id = refresh_tokens.grant_id AND g.revoked)";
const SQL_INSERT_REFRESH: &str = "INSERT INTO refresh_tokens \
     (hash, grant_id, scope, expires_at, used) \
     VALUES ($1, $2, $3, $4, FALSE)";
/// Keeps the grant at least until an access token issued from it expires.
const SQL_EXTEND_GRANT: &str =
    "UPDATE grants SET tokens_until = $1 WHERE id = $2 AND tokens_until < $1";
