-- JWTs carry the user's token_version; bumping it (password change, two-factor change,
-- "sign out everywhere") makes every JWT issued before invalid.
ALTER TABLE users ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0;

-- Invitations to a site: the invitee follows a single-use link and sets their own password
-- (or signs in); only a SHA-256 digest of the link's token is stored.
CREATE TABLE invitations (
    id          TEXT PRIMARY KEY,
    digest      BLOB NOT NULL UNIQUE,
    site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    email       TEXT NOT NULL,               -- lower-cased
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
    invited_by  TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    accepted_at INTEGER
);
CREATE INDEX invitations_site ON invitations (site_id);
