-- Fast contact lists at 100,000 contacts: trigram indexes (pg_trgm, a trusted extension any
-- database owner may create) for substring search of names, emails and numbers with LIKE, and
-- indexes for the opt-out filter and the sort by name.

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX contacts_name_trgm ON contacts USING gin (LOWER(name) gin_trgm_ops);
CREATE INDEX contacts_email_trgm ON contacts USING gin (LOWER(email) gin_trgm_ops);
CREATE INDEX contacts_phone_trgm ON contacts USING gin (phone gin_trgm_ops);
CREATE INDEX contacts_opted_out ON contacts (workspace_id, opted_out_at);
CREATE INDEX contacts_by_name ON contacts (workspace_id, (name IS NULL), LOWER(name), id);
