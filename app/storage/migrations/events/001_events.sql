-- Raw events, append-only. One row per accepted hit, enriched at ingest.
-- Visit attributes (entry_page .. city) are copied from the session's first event onto
-- every event of the session, so breakdowns over events count visits with no join.
CREATE TABLE events (
    site_id         VARCHAR NOT NULL,
    ts              TIMESTAMP NOT NULL,      -- UTC
    day             DATE NOT NULL,           -- the site-local day of ts
    name            VARCHAR NOT NULL,        -- pageview, engagement, or a custom name
    visitor_id      BIGINT NOT NULL,         -- keyed hash, valid for one site-day
    session_id      BIGINT NOT NULL,         -- increasing counter, assigned at ingest
    hostname        VARCHAR,
    pathname        VARCHAR,
    entry_page      VARCHAR,
    referrer        VARCHAR,                 -- referrer domain
    source          VARCHAR,
    channel         VARCHAR,
    utm_source      VARCHAR,
    utm_medium      VARCHAR,
    utm_campaign    VARCHAR,
    utm_content     VARCHAR,
    utm_term        VARCHAR,
    device          VARCHAR,
    browser         VARCHAR,
    browser_version VARCHAR,
    os              VARCHAR,
    os_version      VARCHAR,
    screen          VARCHAR,
    country         VARCHAR,                 -- ISO 3166-1 alpha-2
    region          VARCHAR,                 -- ISO 3166-2
    city            VARCHAR,
    props           MAP(VARCHAR, VARCHAR),
    revenue         DECIMAL(18, 6),
    currency        VARCHAR,
    interactive     BOOLEAN NOT NULL,
    engagement_ms   INTEGER,
    scroll_depth    SMALLINT,
    user_key        BIGINT                   -- HMAC(site secret, user_id) for server-side users
);

-- Hits dropped as bots, per site-day (reported as meta.filtered_bot_traffic).
CREATE TABLE bot_counts (
    site_id VARCHAR NOT NULL,
    day     DATE NOT NULL,
    hits    BIGINT NOT NULL,
    PRIMARY KEY (site_id, day)
);
