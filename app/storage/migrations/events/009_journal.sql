-- The last ingest-journal entry (app/storage/journal.py) committed here, set in the same
-- transaction as its rows: entries at or below it are never applied twice.
CREATE TABLE journal_applied (seq BIGINT NOT NULL);
INSERT INTO journal_applied VALUES (0);
