-- Broadcasts: a message sent to many contacts through the channel's queue at bulk priority.
CREATE TABLE broadcasts (
    id INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    channel_id INTEGER NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    -- balas_domain::MissingRule and Audience as JSON (a list audience keeps only its kind).
    missing TEXT NOT NULL,
    audience TEXT NOT NULL,
    status TEXT NOT NULL,
    send_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    started_at INTEGER,
    finished_at INTEGER,
    paused_reason TEXT,
    waiting TEXT,
    duplicates INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX broadcasts_by_workspace ON broadcasts (workspace_id, created_at);
CREATE INDEX broadcasts_by_status ON broadcasts (status, send_at);

-- One row per different number of the audience. `state` is Balas' side (pending, queued,
-- skipped, cancelled); once queued, the message's own status says the rest.
CREATE TABLE broadcast_recipients (
    id INTEGER PRIMARY KEY,
    broadcast_id INTEGER NOT NULL REFERENCES broadcasts (id) ON DELETE CASCADE,
    workspace_id INTEGER NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    contact_id INTEGER REFERENCES contacts (id) ON DELETE SET NULL,
    phone TEXT NOT NULL,
    state TEXT NOT NULL,
    skip_reason TEXT,
    message_id INTEGER REFERENCES messages (id) ON DELETE SET NULL,
    UNIQUE (broadcast_id, phone)
);
CREATE INDEX broadcast_recipients_by_state ON broadcast_recipients (broadcast_id, state, id);

-- When an outbound message left for the phone (for a broadcast's chart of sends over time).
ALTER TABLE messages ADD COLUMN sent_at INTEGER;
-- A number's broadcast sends of the day (its daily cap).
CREATE INDEX messages_bulk_by_channel ON messages (channel_id, created_at) WHERE sender = 'broadcast';

-- A workspace's sending rules for broadcasts (balas_domain::SendingRules); defaults when absent.
CREATE TABLE sending_rules (
    workspace_id INTEGER PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    time_zone TEXT NOT NULL,
    from_hour INTEGER NOT NULL,
    to_hour INTEGER NOT NULL,
    daily_cap INTEGER NOT NULL
);
