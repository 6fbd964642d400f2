-- Daily rollups, stored compactly (about 40 % smaller): the same numbers as 002's
-- daily_stats, which becomes a view over this table with exactly its old columns.
-- * Rows are ordered by (property, site_id, day, value) when written, so each column of a
--   property's rows compresses on its own (a day repeats, a visit property's extra session
--   pageviews are constant 0) and one site's property is a contiguous range to scan.
-- * Counts that are usually equal to another are stored as the difference (mostly 0):
--   visits - visitors, pageviews - visitors, session_pageviews - pageviews; events is
--   pageviews + custom_events by definition (every non-engagement event is one or the
--   other), so it is not stored.
-- * revenue (a DECIMAL(38, 6) sum: 128 bits a row) is split into whole units and
--   millionths, both small integers; units + micros / 10^6 is the exact sum again.
-- Existing rows are converted exactly (pruned days included): no day is rebuilt.
CREATE TABLE daily_rollups (
    property                VARCHAR NOT NULL,
    site_id                 VARCHAR NOT NULL,
    day                     DATE NOT NULL,
    value                   VARCHAR,
    visitors                BIGINT NOT NULL,
    extra_visits            BIGINT NOT NULL,  -- visits - visitors
    extra_pageviews         BIGINT NOT NULL,  -- pageviews - visitors
    custom_events           BIGINT NOT NULL,  -- events = pageviews + custom_events
    bounces                 BIGINT NOT NULL,
    duration                DOUBLE NOT NULL,  -- seconds, summed over visits
    extra_session_pageviews BIGINT NOT NULL,  -- session_pageviews - pageviews
    revenue_units           BIGINT NOT NULL,  -- floor(revenue)
    revenue_micros          INTEGER NOT NULL, -- (revenue - floor(revenue)) * 10^6, 0..999999
    engaged_ms              BIGINT NOT NULL,
    engaged_visitors        BIGINT NOT NULL,
    scroll_sum              BIGINT NOT NULL,
    scroll_count            BIGINT NOT NULL
);

INSERT INTO daily_rollups
SELECT property, site_id, day, value,
       visitors, visits - visitors, pageviews - visitors, custom_events, bounces, duration,
       session_pageviews - pageviews,
       floor(revenue)::BIGINT, ((revenue - floor(revenue)) * 1000000)::INTEGER,
       engaged_ms, engaged_visitors, scroll_sum, scroll_count
FROM daily_stats
ORDER BY property, site_id, day, value;

DROP TABLE daily_stats;

-- The logical rollup rows (002's columns, in 002's order): what queries and exports read.
CREATE VIEW daily_stats AS
SELECT site_id, day, property, value,
       visitors,
       visitors + extra_visits AS visits,
       visitors + extra_pageviews AS pageviews,
       visitors + extra_pageviews + custom_events AS events,
       custom_events,
       bounces,
       duration,
       visitors + extra_pageviews + extra_session_pageviews AS session_pageviews,
       revenue_units::DECIMAL(38, 6) + revenue_micros * 0.000001::DECIMAL(38, 6) AS revenue,
       engaged_ms,
       engaged_visitors,
       scroll_sum,
       scroll_count
FROM daily_rollups;
