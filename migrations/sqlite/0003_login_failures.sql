-- Login failure counters per account and per client IP, shared by every node (ASVS 6.3.1).
CREATE TABLE login_failures (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    last_at BIGINT NOT NULL
);
CREATE INDEX login_failures_last_at ON login_failures (last_at);
