-- Traffic alerts (SPEC §7 "alerts"; Plausible's spike and drop notifications): a mail when
-- a site's current visitors (last 5 minutes) reach the spike threshold, or its visitors
-- of the last 12 hours fall below the drop threshold; at most one of each per 12 hours.
-- Their recipients are lists of email_reports (kinds 'spike' and 'drop'), with the same
-- per-address unsubscribe link: the table is rebuilt for the wider CHECK.
CREATE TABLE email_reports_new (
    site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('weekly', 'monthly', 'spike', 'drop')),
    email       TEXT NOT NULL,               -- trimmed, lower-cased
    token       TEXT NOT NULL UNIQUE,        -- random, url-safe: /reports/unsubscribe/<token>
    created_at  INTEGER NOT NULL,            -- unix seconds: no period due before is sent
    last_period TEXT,                        -- reports: first day (site-local) of the last one sent
    PRIMARY KEY (site_id, kind, email)
);
INSERT INTO email_reports_new (site_id, kind, email, token, created_at, last_period)
SELECT site_id, kind, email, token, created_at, last_period FROM email_reports;
DROP TABLE email_reports;
ALTER TABLE email_reports_new RENAME TO email_reports;

CREATE TABLE traffic_alerts (
    site_id   TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    kind      TEXT NOT NULL CHECK (kind IN ('spike', 'drop')),
    threshold INTEGER NOT NULL CHECK (threshold >= 1),  -- visitors
    last_sent INTEGER,                                   -- unix seconds of the last mail
    PRIMARY KEY (site_id, kind)
);
