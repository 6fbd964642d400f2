-- Privacy (DSAR) deletion requests. The user is named by user_key, the site-keyed HMAC
-- pseudonym (never the raw user id), so the queue itself holds no identifier.
CREATE TABLE privacy_requests (
    id               TEXT PRIMARY KEY,           -- pr_<24 hex>
    site_id          TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    user_key         INTEGER NOT NULL,
    status           TEXT NOT NULL,              -- queued, running, done, failed
    requested_by     TEXT,
    created_at       TEXT NOT NULL,              -- ISO-8601 UTC
    started_at       TEXT,
    finished_at      TEXT,
    days             TEXT,                       -- JSON: the site-days found holding events
    events_deleted   INTEGER NOT NULL DEFAULT 0,
    days_rebuilt     INTEGER NOT NULL DEFAULT 0,
    days_not_rebuilt TEXT NOT NULL DEFAULT '[]', -- JSON: pruned days (their rollups stay)
    error            TEXT
);

CREATE INDEX privacy_requests_status ON privacy_requests (status);
