-- The AI agent. A workspace's provider (an OpenAI-compatible API: its address, key and default
-- model) and its monthly token cap (0: none). The key is never shown again once saved.
CREATE TABLE ai_settings (
    workspace_id INTEGER PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    base_url TEXT NOT NULL,
    api_key TEXT NOT NULL,
    model TEXT NOT NULL,
    monthly_token_cap INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- A channel's AI profile (its prompt and settings, as JSON), whether it answers, and its
-- version; every saved version is kept for the history and a revert.
CREATE TABLE ai_profiles (
    channel_id INTEGER PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
    workspace_id INTEGER NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    enabled INTEGER NOT NULL,
    version INTEGER NOT NULL,
    profile TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE ai_profile_versions (
    id INTEGER PRIMARY KEY,
    channel_id INTEGER NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    workspace_id INTEGER NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    profile TEXT NOT NULL,
    note TEXT NOT NULL,
    changed_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    changed_at INTEGER NOT NULL,
    UNIQUE (channel_id, version)
);

-- Tokens the AI used, per conversation and month ('2026-11', UTC).
CREATE TABLE ai_usage (
    workspace_id INTEGER NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    month TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, conversation_id, month)
);
CREATE INDEX ai_usage_by_month ON ai_usage (workspace_id, month);

-- The AI stays quiet in a conversation an agent took over (replied, or was handed) until an
-- agent hands it back.
ALTER TABLE conversations ADD COLUMN ai_paused INTEGER NOT NULL DEFAULT 0;
