-- A second duration component (issue #20): seconds from each visit's first to its last
-- event that is not an engagement ping, summed over visits. Plausible's v2 visit_duration
-- ignores engagement events (its session cache only keeps a session alive on them); the
-- native visit_duration (`duration`) counts them. Both come from the same rollup rows.
--
-- Existing rows get their `duration` (the best that is known without raw events); every
-- day whose raw events are still there is marked for a rebuild (its event count no longer
-- matches, so the next rollup pass recomputes both components exactly). Pruned days keep
-- the approximation: their raw events are gone.
ALTER TABLE daily_rollups ADD COLUMN event_duration DOUBLE NOT NULL DEFAULT 0;
UPDATE daily_rollups SET event_duration = duration;
ALTER TABLE import_rollups ADD COLUMN event_duration DOUBLE NOT NULL DEFAULT 0;
UPDATE import_rollups SET event_duration = duration;
UPDATE rollup_days SET events = -1 WHERE NOT pruned;

DROP VIEW daily_stats;
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
       scroll_count,
       event_duration
FROM daily_rollups;
