-- Access tokens are no longer stored one row each: a user token's `jti` names its grant, and
-- the grant records how long tokens issued from it may live, so the janitor keeps it (and
-- its revocation flag) until then. Existing rows move into that horizon.
ALTER TABLE grants ADD COLUMN tokens_until BIGINT NOT NULL DEFAULT 0;
UPDATE grants SET tokens_until = a.until
    FROM (SELECT grant_id, MAX(expires_at) AS until FROM access_tokens GROUP BY grant_id) a
    WHERE a.grant_id = grants.id;
DROP TABLE access_tokens;
