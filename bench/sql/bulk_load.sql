-- Bulk load for the PostgreSQL scale phase of bench/run.sh (SCALE=1).
-- Run against a database that `keycard migrate` has just created:
--
--   psql -v users=1000000 -v clients=100000 -v grants=2000000 -v refresh=10000000 \
--        -v ON_ERROR_STOP=1 -d DB -f bench/sql/bulk_load.sql
--
-- Rows are synthetic but well-formed (every bulk grant points at a bulk user
-- and client, every refresh token at a grant, hashes are 32-byte SHA-256
-- values, JSON columns are JSON arrays); nobody knows the plaintext of the
-- bulk refresh tokens, which is fine: the benchmark refreshes real tokens
-- obtained through the normal flow, on top of these tables.
--
-- Refresh tokens are spread round-robin over the grants (refresh/grants
-- tokens per grant, like a rotation history): the last one of each grant is
-- live, the others are used. All expire 14-29 days from now, so the server's
-- purge job finds nothing to delete and every grant keeps a token.
--
-- For speed, the indexes and primary keys of the four tables are dropped
-- before the inserts and recreated afterwards from their own definitions
-- (pg_get_indexdef / pg_get_constraintdef); a freshly built index is denser
-- than one grown by random inserts, which slightly favours lookups.
\set ON_ERROR_STOP on
\timing on
SET synchronous_commit = off;
SET maintenance_work_mem = '512MB';
SET work_mem = '64MB';
SELECT extract(epoch FROM now())::bigint AS now_s \gset

CREATE TEMP TABLE bulk_idx AS
SELECT t.relname AS tbl, ic.relname AS idx, pg_get_indexdef(i.indexrelid) AS idxdef,
       c.conname, pg_get_constraintdef(c.oid) AS condef
FROM pg_index i
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_class ic ON ic.oid = i.indexrelid
LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = t.oid AND c.contype IN ('p', 'u')
WHERE t.relname IN ('users', 'clients', 'grants', 'refresh_tokens')
  AND t.relnamespace = current_schema()::regnamespace;

SELECT tbl, idx, coalesce(conname, '-') AS constraint FROM bulk_idx ORDER BY tbl, idx;

DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM bulk_idx LOOP
    IF r.conname IS NOT NULL THEN
      EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', r.tbl, r.conname);
    ELSE
      EXECUTE format('DROP INDEX %I', r.idx);
    END IF;
  END LOOP;
END $$;

INSERT INTO users (id, username, password_hash, name, given_name, family_name, email, email_verified, disabled, created_at)
SELECT 'bulk-u-' || i,
       'bulk-user-' || i,
       '$argon2id$v=19$m=19456,t=2,p=1$' || rtrim(encode(sha256(convert_to('salt' || i, 'UTF8')), 'base64'), '=')
         || '$' || rtrim(encode(sha256(convert_to('hash' || i, 'UTF8')), 'base64'), '='),
       'Bulk User ' || i, 'Bulk', 'User ' || i,
       'bulk-user-' || i || '@example.com', true, false,
       :now_s - (i % 31536000)
FROM generate_series(1, :users) AS i;

INSERT INTO clients (id, name, secret_hash, redirect_uris, grant_types, scopes, audiences, first_party, created_at)
SELECT 'bulk-c-' || i,
       'Bulk client ' || i,
       CASE WHEN i % 2 = 0 THEN sha256(convert_to('bulk-secret-' || i, 'UTF8')) END,
       CASE WHEN i % 2 = 0 THEN '[]' ELSE '["https://app' || i || '.example.com/cb"]' END,
       CASE WHEN i % 2 = 0 THEN '["client_credentials"]' ELSE '["authorization_code","refresh_token"]' END,
       'openid offline_access read',
       '["https://api.example.com"]',
       false,
       :now_s - (i % 31536000)
FROM generate_series(1, :clients) AS i;

INSERT INTO grants (id, client_id, user_id, scope, audience, auth_time, sid, nonce, created_at, revoked)
SELECT 'bulk-g-' || i,
       'bulk-c-' || (1 + i % :clients),
       'bulk-u-' || (1 + i % :users),
       'openid offline_access read',
       'https://api.example.com',
       :now_s - (i % 2592000),
       'bulk-s-' || i,
       NULL,
       :now_s - (i % 2592000),
       false
FROM generate_series(1, :grants) AS i;

INSERT INTO refresh_tokens (hash, grant_id, scope, expires_at, used)
SELECT sha256(convert_to('bulk-rt-' || i, 'UTF8')),
       'bulk-g-' || (1 + (i - 1) % :grants),
       'openid offline_access read',
       :now_s + 86400 * (14 + i % 16),
       i <= :refresh - :grants
FROM generate_series(1, :refresh) AS i;

DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM bulk_idx LOOP
    IF r.conname IS NOT NULL THEN
      EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s', r.tbl, r.conname, r.condef);
    ELSE
      EXECUTE r.idxdef;
    END IF;
  END LOOP;
END $$;

VACUUM (ANALYZE) users;
VACUUM (ANALYZE) clients;
VACUUM (ANALYZE) grants;
VACUUM (ANALYZE) refresh_tokens;

SELECT 'users' AS tbl, count(*) FROM users
UNION ALL SELECT 'clients', count(*) FROM clients
UNION ALL SELECT 'grants', count(*) FROM grants
UNION ALL SELECT 'refresh_tokens', count(*) FROM refresh_tokens;

-- Flush the load's dirty pages now, so the measurement does not share the disk with the
-- checkpoint that would otherwise follow it (the empty-database run has no such backlog).
CHECKPOINT;
