-- Access tokens revoked one by one (RFC 7009), kept until they would have expired.
CREATE TABLE revoked_access_tokens (
    jti TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_access_tokens_expires_at ON revoked_access_tokens (expires_at);
