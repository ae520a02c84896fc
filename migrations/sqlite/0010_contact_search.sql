-- Fast contact lists at 100,000 contacts: a trigram full-text table for substring search of
-- names, emails and numbers (kept in step with contacts by triggers), and indexes for the
-- opt-out filter and the sort by name.

CREATE VIRTUAL TABLE contacts_search USING fts5(
    name, email, phone, content = 'contacts', content_rowid = 'id', tokenize = 'trigram'
);
CREATE TRIGGER contacts_search_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contacts_search (rowid, name, email, phone) VALUES (new.id, new.name, new.email, new.phone);
END;
CREATE TRIGGER contacts_search_delete AFTER DELETE ON contacts BEGIN
    INSERT INTO contacts_search (contacts_search, rowid, name, email, phone)
    VALUES ('delete', old.id, old.name, old.email, old.phone);
END;
CREATE TRIGGER contacts_search_update AFTER UPDATE OF name, email, phone ON contacts BEGIN
    INSERT INTO contacts_search (contacts_search, rowid, name, email, phone)
    VALUES ('delete', old.id, old.name, old.email, old.phone);
    INSERT INTO contacts_search (rowid, name, email, phone) VALUES (new.id, new.name, new.email, new.phone);
END;
INSERT INTO contacts_search (contacts_search) VALUES ('rebuild');

CREATE INDEX contacts_opted_out ON contacts (workspace_id, opted_out_at);
CREATE INDEX contacts_by_name ON contacts (workspace_id, name IS NULL, LOWER(name), id);
