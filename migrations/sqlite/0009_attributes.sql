-- Custom attributes of contacts (their definitions per workspace, and the values), and labels on
-- conversations.

CREATE TABLE attributes (
    id INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- How imports, exports, the API and message variables name it (balas_domain::AttributeKey).
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('text', 'number', 'date', 'yes_no', 'one_of')),
    -- A one-of attribute's choices, as a JSON array.
    options TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL,
    UNIQUE (workspace_id, key)
);

CREATE TABLE contact_attributes (
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    attribute_id INTEGER NOT NULL REFERENCES attributes (id) ON DELETE CASCADE,
    -- The value in its stored form (dates YYYY-MM-DD, yes/no as yes or no).
    value TEXT NOT NULL,
    -- A number attribute's value as a number, to compare.
    number REAL,
    PRIMARY KEY (contact_id, attribute_id)
) WITHOUT ROWID;
CREATE INDEX contact_attributes_value ON contact_attributes (attribute_id, value, contact_id);
CREATE INDEX contact_attributes_number ON contact_attributes (attribute_id, number, contact_id);

CREATE TABLE conversation_labels (
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    label_id INTEGER NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
    PRIMARY KEY (conversation_id, label_id)
) WITHOUT ROWID;
CREATE INDEX conversation_labels_label ON conversation_labels (label_id, conversation_id);
