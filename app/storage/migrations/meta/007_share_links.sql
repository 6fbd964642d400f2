-- Share links: a read-only view of one site's dashboard without signing in (/share/{token}).
-- The token is the link itself (shown to the site's owners and admins again later, like
-- Plausible's shared links), so it is stored as is; a password is an argon2id hash.
CREATE TABLE share_links (
    id            TEXT PRIMARY KEY,           -- random hex, names the link in the UI and tokens
    site_id       TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    token         TEXT NOT NULL UNIQUE,       -- the /share/{token} path segment
    name          TEXT NOT NULL,
    password_hash TEXT,                       -- argon2id PHC string; NULL: no password
    filters       TEXT NOT NULL DEFAULT '',   -- fixed filter, native query string (page=/blog/*)
    frame_origins TEXT NOT NULL DEFAULT '',   -- space-separated origins allowed to embed it
    created_by    TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at    INTEGER NOT NULL,           -- unix seconds
    expires_at    INTEGER                     -- unix seconds; NULL: never
);
CREATE INDEX share_links_site ON share_links (site_id);
