-- Imported daily aggregates (issue #22): a Plausible CSV export's imported_* tables, kept
-- apart from the site's own data and added to answers only when asked (with_imported /
-- include.imports). One row per import, site-local day, table (kind) and value. The
-- dimension columns carry the events table's names, so the stats compiler's property and
-- filter terms apply to them unchanged; a table fills only its own (the others are NULL).
CREATE TABLE imported_stats (
    seq              INTEGER NOT NULL,   -- meta.sqlite3's import_jobs.seq
    site_id          VARCHAR NOT NULL,
    day              DATE NOT NULL,
    kind             VARCHAR NOT NULL,   -- visitors | sources | pages | entry_pages | exit_pages
                                         -- | custom_events | locations | devices | browsers
                                         -- | operating_systems
    source           VARCHAR,
    referrer         VARCHAR,
    channel          VARCHAR,
    utm_source       VARCHAR,
    utm_medium       VARCHAR,
    utm_campaign     VARCHAR,
    utm_content      VARCHAR,
    utm_term         VARCHAR,
    hostname         VARCHAR,
    pathname         VARCHAR,
    entry_page       VARCHAR,
    exit_page        VARCHAR,
    name             VARCHAR,            -- a custom event's name; pageview on visitors rows
    props            MAP(VARCHAR, VARCHAR), -- its link_url (url) and path (path)
    country          VARCHAR,
    region           VARCHAR,
    city             VARCHAR,            -- Plausible's GeoNames id, as text
    device           VARCHAR,
    browser          VARCHAR,
    browser_version  VARCHAR,
    os               VARCHAR,
    os_version       VARCHAR,
    visitors         BIGINT NOT NULL,
    visits           BIGINT NOT NULL,    -- entrances / exits for entry and exit pages
    pageviews        BIGINT NOT NULL,
    events           BIGINT NOT NULL,
    bounces          BIGINT NOT NULL,
    duration         DOUBLE NOT NULL,    -- seconds, summed over visits
    scroll_sum       BIGINT NOT NULL,
    scroll_count     BIGINT NOT NULL,
    engaged_ms       BIGINT NOT NULL,
    engaged_visitors BIGINT NOT NULL
);
