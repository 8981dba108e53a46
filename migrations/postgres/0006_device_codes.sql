-- Device authorizations (RFC 8628). The device code and the user code appear only as SHA-256
-- hashes; a user code is unique among the stored ones (a collision makes the server draw
-- again). The poll state (last poll, interval) lives here so that `slow_down` holds on every
-- node; `grant_id` names the grant made on approval, which the device then collects once.
CREATE TABLE device_codes (
    hash BYTEA PRIMARY KEY,
    user_code_hash BYTEA NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    audience TEXT,
    requested_from TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    poll_interval BIGINT NOT NULL,
    last_poll_at BIGINT,
    state TEXT NOT NULL,
    grant_id TEXT
);
CREATE INDEX device_codes_expires_at ON device_codes (expires_at);
