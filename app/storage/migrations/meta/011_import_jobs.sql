-- Import jobs (issue #22): one row per import of another tool's export into a site, with
-- its progress and summary. seq numbers the import's rows in events.duckdb (its session
-- ids and its rows in the import_* tables there); AUTOINCREMENT: never reused, so a
-- deleted import's number can't name a later one's rows.
CREATE TABLE import_jobs (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,          -- public job id
    site_id      TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    source       TEXT NOT NULL,                 -- plausible | umami | goatcounter | ga4
    status       TEXT NOT NULL,                 -- queued | running | done | failed | duplicate | deleted
    content_hash TEXT NOT NULL,                 -- SHA-256 of the files' bytes, in order
    files        TEXT NOT NULL,                 -- JSON list of file names
    overlap      TEXT,                          -- skip | keep-both | NULL (ask)
    done_rows    INTEGER NOT NULL DEFAULT 0,    -- progress
    total_rows   INTEGER,
    summary      TEXT,                          -- JSON, once finished
    error        TEXT,
    created_at   TEXT NOT NULL,                 -- ISO-8601 UTC
    finished_at  TEXT
);
CREATE INDEX import_jobs_site ON import_jobs (site_id, seq);
