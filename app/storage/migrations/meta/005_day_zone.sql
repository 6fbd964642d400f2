-- The zone of a site's stored days: the `day` column of its events and its daily rollups in
-- DuckDB. It differs from `timezone` only between a change of the site's timezone and the
-- re-daying of its events that follows (jobs/lifecycle.py align_zones), which then sets it.
ALTER TABLE sites ADD COLUMN day_zone TEXT;
UPDATE sites SET day_zone = timezone;
