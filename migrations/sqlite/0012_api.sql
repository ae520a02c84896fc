-- API keys for the REST API (`/api/v1`): stored as a SHA-256 hash of the secret, which is shown
-- once. A key acts with its creator's membership.
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    rate_per_minute INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    created_by INTEGER REFERENCES users (id) ON DELETE CASCADE,
    last_used_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX api_keys_by_workspace ON api_keys (workspace_id, created_at);

-- `Idempotency-Key`s of POST requests: the first answer, kept a day, is the answer to a repeat.
CREATE TABLE idempotency_keys (
    api_key_id INTEGER NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    -- 0 while the first request is being answered.
    status INTEGER NOT NULL,
    response TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (api_key_id, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
