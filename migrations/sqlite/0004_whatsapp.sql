-- Real WhatsApp numbers: the session state of each linked number (keys, device data, app state)
-- lives here, never on a worker's disk, so any worker can resume it.

-- The fencing token of the worker that took each session last. A worker writes only while the
-- token it got is still the current one, so one that lost the session cannot corrupt it.
CREATE TABLE wa_session_fences (
    channel_id INTEGER PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
    fence INTEGER NOT NULL
);

-- The client library's key/value state, one row per (space, key).
CREATE TABLE wa_session_entries (
    channel_id INTEGER NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    space TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (channel_id, space, key)
) WITHOUT ROWID;

-- The WhatsApp account's name once linked; how the admin wants to link it ('qr' or 'code'); and
-- the code to show while the number waits for a link (JSON, cleared once linked).
ALTER TABLE channels ADD COLUMN linked_name TEXT;
ALTER TABLE channels ADD COLUMN link_method TEXT NOT NULL DEFAULT 'qr';
ALTER TABLE channels ADD COLUMN pairing TEXT;
