-- Hardening and the revocation log.
--
-- Usernames are unique without regard to case (RFC 8265 §3.3 UsernameCaseMapped): the store
-- keeps the folded form beside the chosen spelling. SQL's lower() folds ASCII only; the store
-- refolds every row with the full rule once after this migration (see `store_meta`).
ALTER TABLE users ADD COLUMN username_key TEXT NOT NULL DEFAULT '';
UPDATE users SET username_key = lower(username);
CREATE UNIQUE INDEX users_username_folded ON users (username_key);

-- One-time data fix-ups the store runs in Rust after the SQL migrations, by name.
CREATE TABLE store_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Client roles and logout metadata: which APIs a client may introspect tokens for (RFC 7662 §4),
-- whether it may read the revocation feed, and OIDC RP-Initiated / Back-Channel Logout.
ALTER TABLE clients ADD COLUMN resource_servers TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN feed BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required BOOLEAN NOT NULL DEFAULT FALSE;

-- A grant's absolute end: refresh tokens rotate, but never past it (ASVS 10.4.8). NULL for
-- grants made before this version, which keep only the inactivity bound.
ALTER TABLE grants ADD COLUMN expires_at BIGINT;
CREATE INDEX grants_sid ON grants (sid);

-- When a key became active, for scheduled rotation.
ALTER TABLE signing_keys ADD COLUMN activated_at BIGINT;

-- Consent is per API: approving photos:read for one audience says nothing about another that
-- happens to define a scope of the same name. '' is "no API" (OpenID Connect scopes only).
CREATE TABLE consents_new (
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    audience TEXT NOT NULL,
    scope TEXT NOT NULL,
    PRIMARY KEY (user_id, client_id, audience)
);
INSERT INTO consents_new SELECT user_id, client_id, '', scope FROM consents;
DROP TABLE consents;
ALTER TABLE consents_new RENAME TO consents;

-- The revocation log: one ordered, gap-free sequence of everything revoked, which the
-- revocation feed serves and introspection consults. `revocation_seq` holds the last number
-- handed out; taking the next one locks its row until commit, so numbers follow commit order.
CREATE TABLE revocation_seq (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last BIGINT NOT NULL
);
INSERT INTO revocation_seq (id, last) VALUES (1, 0);
CREATE TABLE revocations (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    until BIGINT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX revocations_kind_value ON revocations (kind, value);
CREATE INDEX revocations_until ON revocations (until);

-- Access tokens revoked by jti move into the log, in the order they were revoked.
INSERT INTO revocations (seq, at, until, kind, value)
    SELECT ROW_NUMBER() OVER (ORDER BY expires_at, jti), 0, expires_at, 'jti', jti
    FROM revoked_access_tokens;
UPDATE revocation_seq SET last = (SELECT COUNT(*) FROM revocations);
DROP TABLE revoked_access_tokens;

-- Back-channel logout deliveries (OIDC Back-Channel Logout 1.0 §2.7), kept until delivered or
-- given up, so a restart loses none.
CREATE TABLE logout_deliveries (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    uri TEXT NOT NULL,
    sub TEXT NOT NULL,
    sid TEXT,
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    delivered_at BIGINT,
    last_error TEXT
);
CREATE INDEX logout_deliveries_due ON logout_deliveries (delivered_at, next_attempt_at);
