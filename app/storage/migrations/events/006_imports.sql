-- What each import added (issue #22), so that deleting one removes exactly that. seq is
-- meta.sqlite3's import_jobs.seq. An import's raw events are the site's events whose
-- session_id lies in its range (app/storage/imports.py: negative, apart from live ids).
CREATE TABLE imports (
    seq          INTEGER NOT NULL,
    site_id      VARCHAR NOT NULL,
    source       VARCHAR NOT NULL,
    content_hash VARCHAR NOT NULL,
    created_at   TIMESTAMP NOT NULL
);

-- The site-days an import wrote, with its event count there. rolled: the day only has
-- rollups (older than the raw window, or already pruned), to which the import's own rollup
-- rows (import_rollups) were added, and from which a delete subtracts them again.
CREATE TABLE import_days (
    seq     INTEGER NOT NULL,
    site_id VARCHAR NOT NULL,
    day     DATE NOT NULL,
    events  BIGINT NOT NULL,
    rolled  BOOLEAN NOT NULL
);

-- An import's own logical rollup rows (daily_stats' columns) on its rolled days.
CREATE TABLE import_rollups (
    seq               INTEGER NOT NULL,
    site_id           VARCHAR NOT NULL,
    day               DATE NOT NULL,
    property          VARCHAR NOT NULL,
    value             VARCHAR,
    visitors          BIGINT NOT NULL,
    visits            BIGINT NOT NULL,
    pageviews         BIGINT NOT NULL,
    events            BIGINT NOT NULL,
    custom_events     BIGINT NOT NULL,
    bounces           BIGINT NOT NULL,
    duration          DOUBLE NOT NULL,
    session_pageviews BIGINT NOT NULL,
    revenue           DECIMAL(38, 6) NOT NULL,
    engaged_ms        BIGINT NOT NULL,
    engaged_visitors  BIGINT NOT NULL,
    scroll_sum        BIGINT NOT NULL,
    scroll_count      BIGINT NOT NULL
);
