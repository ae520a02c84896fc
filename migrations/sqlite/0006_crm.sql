-- The CRM: contacts' email, opt-out and latest activity; labels; a workspace's stop keywords.

ALTER TABLE contacts ADD COLUMN email TEXT;
-- When the customer asked for no broadcasts (NULL: subscribed).
ALTER TABLE contacts ADD COLUMN opted_out_at INTEGER;
-- The latest message with this contact in any conversation, for sorting and segments.
ALTER TABLE contacts ADD COLUMN last_message_at INTEGER;
UPDATE contacts SET last_message_at = (SELECT MAX(v.last_message_at) FROM conversations v WHERE v.contact_id = contacts.id);
CREATE INDEX contacts_recent ON contacts (workspace_id, last_message_at DESC, id DESC);
CREATE INDEX contacts_created ON contacts (workspace_id, created_at DESC, id DESC);

CREATE TABLE labels (
    id INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- The name in lower case: "VIP" and "vip" are one label.
    name_key TEXT NOT NULL,
    color TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (workspace_id, name_key)
);

CREATE TABLE contact_labels (
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    label_id INTEGER NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
    PRIMARY KEY (contact_id, label_id)
) WITHOUT ROWID;
CREATE INDEX contact_labels_label ON contact_labels (label_id, contact_id);

-- The words that stop broadcasts, as a JSON array (NULL: the defaults).
ALTER TABLE workspaces ADD COLUMN stop_keywords TEXT;
