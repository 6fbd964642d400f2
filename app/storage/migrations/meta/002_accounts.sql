-- Users, site roles, sign-in sessions, API keys, goals and monthly usage counters.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,          -- random hex, public
    email         TEXT NOT NULL UNIQUE,      -- lower-cased
    password_hash TEXT NOT NULL,             -- argon2id PHC string
    is_admin      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL           -- unix seconds
);

CREATE TABLE site_members (
    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role    TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
    PRIMARY KEY (site_id, user_id)
);
CREATE INDEX site_members_user ON site_members (user_id);

-- Sign-in sessions of the UI; only a SHA-256 digest of the cookie value is stored.
CREATE TABLE web_sessions (
    digest     BLOB PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- API keys: only a SHA-256 digest of the whole token is stored; key_prefix finds the row.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    key_prefix   TEXT NOT NULL UNIQUE,       -- av_live_<12 hex>
    digest       BLOB NOT NULL,
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,              -- space-separated
    site_id      TEXT REFERENCES sites(id) ON DELETE CASCADE,  -- NULL: all the owner's sites
    created_by   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX api_keys_site ON api_keys (site_id);

-- Conversion goals: a custom event name or a page path.
CREATE TABLE goals (
    id         TEXT PRIMARY KEY,
    site_id    TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('event', 'page')),
    value      TEXT NOT NULL,                -- event name or page path (may use *)
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (site_id, kind, value)
);

-- Requests per subject (key:<id> or user:<id>) per UTC month.
CREATE TABLE usage_counts (
    subject  TEXT NOT NULL,
    month    TEXT NOT NULL,                  -- YYYY-MM
    requests INTEGER NOT NULL,
    PRIMARY KEY (subject, month)
);
