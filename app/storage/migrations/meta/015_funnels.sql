-- Funnels (SPEC §7): an ordered list of 2 to 8 of a site's goals. A visitor reaches step k
-- when, within 24 hours after one of their step-1 events, they triggered steps 2..k in
-- that order (app/query/funnel.py). Deleting a goal deletes the funnels it is a step of.
CREATE TABLE funnels (
    id         TEXT PRIMARY KEY,                 -- random hex
    site_id    TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    steps      TEXT NOT NULL,                    -- JSON array of goal ids, in order
    created_at INTEGER NOT NULL,                 -- unix seconds
    UNIQUE (site_id, name)
);
