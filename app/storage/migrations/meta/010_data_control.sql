-- Data under the owner's control (issue 21): deleting a site, resetting its stats,
-- retention per site, exclusions.
--
-- privacy_requests becomes the queue of every deletion: one server-side user's events
-- (kind 'user', the DSAR of 004), a whole site ('site') or a site's stats over a range of
-- its days ('reset'). It is rebuilt without 004's foreign key: a site deletion's row
-- outlives its site (its status stays readable; the job blanks its site_id when done), and
-- the job itself deletes the site's other requests.
CREATE TABLE privacy_requests_new (
    id               TEXT PRIMARY KEY,           -- pr_<24 hex>
    kind             TEXT NOT NULL DEFAULT 'user' CHECK (kind IN ('user', 'site', 'reset')),
    site_id          TEXT,                       -- NULL once a site deletion is done
    user_key         INTEGER,                    -- kind 'user': HMAC pseudonym of the user id
    first_day        TEXT,                       -- kind 'reset': site-local YYYY-MM-DD, NULL: all
    last_day         TEXT,                       -- kind 'reset': inclusive, NULL: all
    status           TEXT NOT NULL,              -- queued, running, done, failed
    step             TEXT,                       -- the last step done (resumes after it)
    requested_by     TEXT,
    created_at       TEXT NOT NULL,              -- ISO-8601 UTC
    started_at       TEXT,
    finished_at      TEXT,
    days             TEXT,                       -- JSON: the site-days found holding events
    events_deleted   INTEGER NOT NULL DEFAULT 0,
    days_rebuilt     INTEGER NOT NULL DEFAULT 0,
    days_not_rebuilt TEXT NOT NULL DEFAULT '[]', -- JSON: pruned days (their rollups stay)
    deleted          TEXT NOT NULL DEFAULT '{}', -- JSON: what else went, thing -> count
    error            TEXT
);
INSERT INTO privacy_requests_new (id, kind, site_id, user_key, status, requested_by,
    created_at, started_at, finished_at, days, events_deleted, days_rebuilt,
    days_not_rebuilt, error)
SELECT id, 'user', site_id, user_key, status, requested_by, created_at, started_at,
    finished_at, days, events_deleted, days_rebuilt, days_not_rebuilt, error
FROM privacy_requests;
DROP TABLE privacy_requests;
ALTER TABLE privacy_requests_new RENAME TO privacy_requests;
CREATE INDEX privacy_requests_status ON privacy_requests (status);
CREATE INDEX privacy_requests_site ON privacy_requests (site_id);

-- Set when the site's deletion is requested: from then on the site is gone for every
-- reader (lists, stats, ingest) while its deletion job removes its data and then the row.
ALTER TABLE sites ADD COLUMN deleted_at TEXT;
-- Retention in days; NULL: the instance's default (config: retention.*).
-- raw_retention_days: raw events; retention_days: everything (0: forever).
ALTER TABLE sites ADD COLUMN raw_retention_days INTEGER;
ALTER TABLE sites ADD COLUMN retention_days INTEGER;

-- Exclusions ("shields"): hits matching one are dropped at ingest, before anything is
-- stored, and counted per site, day and rule kind (DuckDB's excluded_counts).
CREATE TABLE site_exclusions (
    id         TEXT PRIMARY KEY,             -- random hex
    site_id    TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('ip', 'hostname', 'page', 'country')),
    -- ip: a network in CIDR form (an address is its /32 or /128), never a visitor's address
    -- seen by ingest; hostname: an allowed host pattern (* wildcards; when a site has any,
    -- hits from other hosts are dropped); page: a path pattern (* wildcards); country: ISO
    -- 3166-1 alpha-2.
    value      TEXT NOT NULL,
    created_at INTEGER NOT NULL,             -- unix seconds
    UNIQUE (site_id, kind, value)
);
