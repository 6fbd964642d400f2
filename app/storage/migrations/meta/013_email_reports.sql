-- Email reports (SPEC §7): a site's weekly and monthly summary, mailed to each address on
-- its list (anyone's: a recipient needs no account). Each row is one address on one list;
-- its token is the address's own unsubscribe link (deleting the row voids it).
CREATE TABLE email_reports (
    site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('weekly', 'monthly')),
    email       TEXT NOT NULL,               -- trimmed, lower-cased
    token       TEXT NOT NULL UNIQUE,        -- random, url-safe: /reports/unsubscribe/<token>
    created_at  INTEGER NOT NULL,            -- unix seconds: no period due before is sent
    last_period TEXT,                        -- first day (site-local) of the last one sent
    PRIMARY KEY (site_id, kind, email)
);
