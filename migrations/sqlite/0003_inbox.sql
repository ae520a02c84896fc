-- The shared inbox: read receipts per channel, private notes, retries, list previews, what agents
-- have read, and canned responses.

ALTER TABLE channels ADD COLUMN read_receipts INTEGER NOT NULL DEFAULT 1;

ALTER TABLE messages ADD COLUMN note INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN retry INTEGER NOT NULL DEFAULT 0;

ALTER TABLE conversations ADD COLUMN last_preview TEXT;
-- The newest inbound message agents have seen (read receipts go out for those after it).
ALTER TABLE conversations ADD COLUMN read_upto INTEGER NOT NULL DEFAULT 0;
CREATE INDEX conversations_contact ON conversations (contact_id);

CREATE TABLE canned_responses (
    id INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    shortcut TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (workspace_id, shortcut)
);
