-- Access tokens are no longer stored one row each: a user token's `jti` names its grant, and
-- the grant records how long tokens issued from it may live, so the janitor keeps it (and
-- its revocation flag) until then. Existing rows move into that horizon.
ALTER TABLE grants ADD COLUMN tokens_until BIGINT NOT NULL DEFAULT 0;
UPDATE grants SET tokens_until = (SELECT MAX(expires_at) FROM access_tokens WHERE grant_id = grants.id)
    WHERE EXISTS (SELECT 1 FROM access_tokens WHERE grant_id = grants.id);
DROP TABLE access_tokens;

-- Codes and refresh tokens are looked up and inserted by their random hash only. Without a
-- rowid the table is the hash's B-tree: one tree less to write per issued token.
CREATE TABLE refresh_tokens_new (
    hash BLOB PRIMARY KEY,
    grant_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used BOOLEAN NOT NULL DEFAULT FALSE
) WITHOUT ROWID;
INSERT INTO refresh_tokens_new SELECT hash, grant_id, scope, expires_at, used FROM refresh_tokens;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_new RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE codes_new (
    hash BLOB PRIMARY KEY,
    grant_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    redirect_uri_sent BOOLEAN NOT NULL,
    code_challenge TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used BOOLEAN NOT NULL DEFAULT FALSE
) WITHOUT ROWID;
INSERT INTO codes_new SELECT hash, grant_id, redirect_uri, redirect_uri_sent, code_challenge, expires_at, used FROM codes;
DROP TABLE codes;
ALTER TABLE codes_new RENAME TO codes;
CREATE INDEX codes_grant_id ON codes (grant_id);
CREATE INDEX codes_expires_at ON codes (expires_at);
