-- Segments (SPEC §7): a site's saved filter sets, by name ("Germany, from Google"), that
-- the dashboard applies in one click. query: the filters in the dashboard's URL grammar
-- ("country=DE&source=Google", "source!=Google" is not, "page~=blog" contains).
CREATE TABLE segments (
    id         TEXT PRIMARY KEY,                 -- random hex
    site_id    TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    query      TEXT NOT NULL,
    created_by TEXT,
    created_at INTEGER NOT NULL,                 -- unix seconds
    UNIQUE (site_id, name)
);
