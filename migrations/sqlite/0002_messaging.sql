-- Channels (WhatsApp numbers), contacts, conversations and messages.

CREATE TABLE channels (
    id INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    provider TEXT NOT NULL CHECK (provider IN ('sandbox', 'whatsapp')),
    phone TEXT NOT NULL,
    rate_per_sec INTEGER NOT NULL DEFAULT 5,
    state TEXT NOT NULL DEFAULT 'idle',
    state_detail TEXT,
    created_at INTEGER NOT NULL,
    -- A number is one WhatsApp account: only one channel anywhere may use it.
    UNIQUE (provider, phone)
);
CREATE INDEX channels_workspace ON channels (workspace_id);

CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    phone TEXT NOT NULL,
    name TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (workspace_id, phone)
);

CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    channel_id INTEGER NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'open',
    assignee INTEGER REFERENCES users (id) ON DELETE SET NULL,
    unread INTEGER NOT NULL DEFAULT 0,
    last_message_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (channel_id, contact_id)
);
CREATE INDEX conversations_recent ON conversations (workspace_id, last_message_at);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    channel_id INTEGER NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    sender TEXT NOT NULL,
    sender_user INTEGER REFERENCES users (id) ON DELETE SET NULL,
    body TEXT NOT NULL,
    wa_id TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    -- The same WhatsApp message stored twice is one row.
    UNIQUE (channel_id, wa_id)
);
CREATE INDEX messages_conversation ON messages (conversation_id, id);
