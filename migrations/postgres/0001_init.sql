-- Keycard schema, version 1. Times are unix seconds; secrets appear only as SHA-256 hashes.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    name TEXT,
    given_name TEXT,
    family_name TEXT,
    picture TEXT,
    email TEXT,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);

CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash BYTEA,
    redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    scopes TEXT NOT NULL,
    audiences TEXT NOT NULL,
    first_party BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE apis (
    identifier TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    access_token_ttl BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_key_enc BYTEA NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retire_until BIGINT
);

CREATE TABLE sessions (
    id_hash BYTEA PRIMARY KEY,
    user_id TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    sid TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE auth_txns (
    id_hash BYTEA PRIMARY KEY,
    request TEXT NOT NULL,
    csrf_hash BYTEA NOT NULL,
    authenticated_user TEXT,
    expires_at BIGINT NOT NULL
);
CREATE INDEX auth_txns_expires_at ON auth_txns (expires_at);

CREATE TABLE consents (
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE grants (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    audience TEXT,
    auth_time BIGINT NOT NULL,
    sid TEXT,
    nonce TEXT,
    created_at BIGINT NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX grants_user_id ON grants (user_id);

CREATE TABLE codes (
    hash BYTEA PRIMARY KEY,
    grant_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    redirect_uri_sent BOOLEAN NOT NULL,
    code_challenge TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX codes_grant_id ON codes (grant_id);
CREATE INDEX codes_expires_at ON codes (expires_at);

CREATE TABLE refresh_tokens (
    hash BYTEA PRIMARY KEY,
    grant_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE access_tokens (
    jti TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX access_tokens_grant_id ON access_tokens (grant_id);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);
