-- The stores this instance has opened beside meta.sqlite3 (issue 17, item 7): once the
-- events store is recorded here, a start without events.duckdb is refused instead of
-- silently beginning an empty one.
CREATE TABLE stores (
    name        TEXT PRIMARY KEY,            -- 'events'
    created_at  TEXT NOT NULL                -- ISO-8601 UTC, the first start that saw it
);
