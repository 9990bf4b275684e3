-- A request may ask approval for one command in a session instead of access.
ALTER TABLE requests ADD COLUMN command TEXT NOT NULL DEFAULT '';
