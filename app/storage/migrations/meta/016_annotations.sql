-- Annotations (SPEC §7): a site's dated notes ("Launched v2"), drawn on the dashboard's
-- graph. A note's day is the site's local calendar day.
CREATE TABLE annotations (
    id         TEXT PRIMARY KEY,                 -- random hex
    site_id    TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    day        TEXT NOT NULL,                    -- site-local YYYY-MM-DD
    text       TEXT NOT NULL,                    -- at most 200 characters
    created_by TEXT,                             -- user id (NULL: an API key's owner gone)
    created_at INTEGER NOT NULL                  -- unix seconds
);
CREATE INDEX annotations_site_day ON annotations (site_id, day);
