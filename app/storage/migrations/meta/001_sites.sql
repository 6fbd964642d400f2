CREATE TABLE sites (
    id          TEXT PRIMARY KEY,            -- public: it is in the tracking snippet
    domain      TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    timezone    TEXT NOT NULL DEFAULT 'UTC',
    secret      BLOB NOT NULL,               -- HMAC key for user_key pseudonyms
    created_at  TEXT NOT NULL                -- ISO-8601 UTC
);

-- One random salt per site and site-local day; destroyed the day after its day ends.
CREATE TABLE salts (
    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    day     TEXT NOT NULL,                   -- YYYY-MM-DD, site-local
    salt    BLOB NOT NULL,
    PRIMARY KEY (site_id, day)
);
