-- keycard-bff's tables live in the application's own database, so every name starts with bff_.
-- Sessions: the SHA-256 of the cookie value, the user, and the tokens sealed with AES-256-GCM
-- (the row's id_hash is the associated data, so a sealed blob cannot be moved to another row).
CREATE TABLE bff_sessions (
    id_hash BYTEA PRIMARY KEY,
    issuer TEXT NOT NULL,
    sub TEXT NOT NULL,
    sid TEXT,
    name TEXT,
    email TEXT,
    tokens BYTEA NOT NULL,
    generation BIGINT NOT NULL,
    access_expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX bff_sessions_sid ON bff_sessions (issuer, sid);
CREATE INDEX bff_sessions_sub ON bff_sessions (issuer, sub);
CREATE INDEX bff_sessions_expires_at ON bff_sessions (expires_at);

-- Pending logins: state, nonce, PKCE verifier and return_to, sealed, keyed by the login cookie's hash.
CREATE TABLE bff_logins (
    id_hash BYTEA PRIMARY KEY,
    sealed BYTEA NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX bff_logins_expires_at ON bff_logins (expires_at);

-- Back-channel logout token ids already used (OIDC Back-Channel Logout 1.0 §2.6 item 7).
CREATE TABLE bff_logout_jtis (
    issuer TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, jti)
);
CREATE INDEX bff_logout_jtis_expires_at ON bff_logout_jtis (expires_at);
