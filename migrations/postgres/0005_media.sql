-- Files in messages: the attachment's description as JSON (balas_domain::Media); the bytes live in
-- the workspace's media folder.
ALTER TABLE messages ADD COLUMN media TEXT;
