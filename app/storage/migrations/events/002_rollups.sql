-- Daily rollups: additive components per site, site-local day, property and value.
-- property '' holds the day's totals (value NULL). A visitor and a session never span two
-- site-days, so sums of these rows over any set of days are exact.
CREATE TABLE daily_stats (
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
    duration          DOUBLE NOT NULL,     -- seconds, summed over visits
    session_pageviews BIGINT NOT NULL,
    revenue           DECIMAL(38, 6) NOT NULL,
    engaged_ms        BIGINT NOT NULL,
    engaged_visitors  BIGINT NOT NULL,
    scroll_sum        BIGINT NOT NULL,
    scroll_count      BIGINT NOT NULL
);

-- Which site-days are rolled up, and how many raw events they had then (a different count
-- later means late events arrived: the day is rebuilt). A pruned day's raw events are gone:
-- it is never rebuilt (that would replace the whole day with what little raw is left).
CREATE TABLE rollup_days (
    site_id  VARCHAR NOT NULL,
    day      DATE NOT NULL,
    events   BIGINT NOT NULL,
    built_at TIMESTAMP NOT NULL,
    pruned   BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (site_id, day)
);
