-- Avocet's tables on ClickHouse (issue #24, preview): the same columns as the DuckDB events
-- store (app/storage/migrations/events/), laid out as Plausible's events_v2 is
-- (plausible/analytics: priv/data_migrations/NumericIDs/sql/create-events-v2.sql.eex).
-- Every statement is idempotent (IF NOT EXISTS): ClickHouseEventStore runs them all on open.
-- On a database of ClickHouse's Replicated engine each table engine becomes its
-- Replicated* twin (store.schema_statements(replicated=True): default Keeper path and
-- replica name); that database sends the DDL to every replica itself.
--
-- Deduplication: each table keeps the hashes of its last 10,000 inserts
-- (non_replicated_deduplication_window; replicated_deduplication_window, added when
-- replicated), so a batch retried with the same insert_deduplication_token inserts
-- nothing the second time.
-- fsync_after_insert / fsync_part_directory: an insert returns once its part is on disk, so
-- an acknowledged hit survives a power cut (replicated: and a quorum of replicas has it).
-- Every CREATE TABLE gets PROMPT_CLEANUP (store.py) appended to its SETTINGS: parts that a
-- merge or a deletion replaced leave the disk within about a second.

-- Raw events, append-only: one row per accepted hit (EVENT_SCHEMA in app/storage/events.py,
-- in that column order). Strings that DuckDB may hold as NULL stay Nullable, so the same
-- SQL answers the same (Direct / None, (not set)). Few distinct values: LowCardinality.
-- visitor is visitor_id's bits as UInt64 (MATERIALIZED: not in SELECT *, not inserted),
-- so SAMPLE BY can read a fraction of the visitors of a site-day.
CREATE TABLE IF NOT EXISTS events (
    site_id         LowCardinality(String),
    ts              DateTime64(6, 'UTC') CODEC(Delta(8), ZSTD(1)),
    day             Date CODEC(Delta(2), ZSTD(1)),
    name            LowCardinality(String),
    visitor_id      Int64,
    session_id      Int64 CODEC(Delta(8), ZSTD(1)),
    hostname        LowCardinality(Nullable(String)),
    pathname        Nullable(String) CODEC(ZSTD(3)),
    entry_page      Nullable(String) CODEC(ZSTD(3)),
    referrer        Nullable(String) CODEC(ZSTD(3)),
    source          LowCardinality(Nullable(String)),
    channel         LowCardinality(Nullable(String)),
    utm_source      Nullable(String) CODEC(ZSTD(3)),
    utm_medium      Nullable(String) CODEC(ZSTD(3)),
    utm_campaign    Nullable(String) CODEC(ZSTD(3)),
    utm_content     Nullable(String) CODEC(ZSTD(3)),
    utm_term        Nullable(String) CODEC(ZSTD(3)),
    device          LowCardinality(Nullable(String)),
    browser         LowCardinality(Nullable(String)),
    browser_version LowCardinality(Nullable(String)),
    os              LowCardinality(Nullable(String)),
    os_version      LowCardinality(Nullable(String)),
    screen          LowCardinality(Nullable(String)),
    country         LowCardinality(Nullable(String)),
    region          LowCardinality(Nullable(String)),
    city            LowCardinality(Nullable(String)),
    props           Map(LowCardinality(String), String) CODEC(ZSTD(3)),
    revenue         Nullable(Decimal(18, 6)),
    currency        LowCardinality(Nullable(String)),
    interactive     Bool,
    engagement_ms   Nullable(Int32),
    scroll_depth    Nullable(Int16),
    user_key        Nullable(Int64),
    visitor         UInt64 MATERIALIZED reinterpretAsUInt64(visitor_id)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
PRIMARY KEY (site_id, day, name, visitor)
ORDER BY (site_id, day, name, visitor, ts)
SAMPLE BY visitor
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 10000,
         fsync_after_insert = 1, fsync_part_directory = 1;

-- Hits dropped as bots, per site-day: every insert adds its hits, merges sum them (read
-- with sum(hits) ... GROUP BY: rows not merged yet are still apart).
CREATE TABLE IF NOT EXISTS bot_counts (
    site_id LowCardinality(String),
    day     Date,
    hits    Int64
)
ENGINE = SummingMergeTree(hits)
ORDER BY (site_id, day)
SETTINGS non_replicated_deduplication_window = 10000,
         fsync_after_insert = 1, fsync_part_directory = 1;

-- Hits dropped by a site's exclusion rules, per site-day and rule kind.
CREATE TABLE IF NOT EXISTS excluded_counts (
    site_id LowCardinality(String),
    day     Date,
    reason  LowCardinality(String),
    hits    Int64
)
ENGINE = SummingMergeTree(hits)
ORDER BY (site_id, day, reason)
SETTINGS non_replicated_deduplication_window = 10000,
         fsync_after_insert = 1, fsync_part_directory = 1;

-- Daily rollups in DuckDB's compact columns (migrations 003 and 008: the compiler's
-- ROLLUP_SUMS apply unchanged), each row stamped with the build that wrote it. A rebuild
-- inserts its rows under a new build, then points rollup_days at it, then deletes the older
-- builds' rows of those days: readers go through daily_rollups_current (rows of each day's
-- current build only), so they see the old build or the new, never both. ReplacingMergeTree
-- keeps the newest build of a key when parts merge.
CREATE TABLE IF NOT EXISTS daily_rollups (
    property                LowCardinality(String),
    site_id                 LowCardinality(String),
    day                     Date,
    value                   Nullable(String),
    build                   UInt64,
    visitors                Int64,
    extra_visits            Int64,
    extra_pageviews         Int64,
    custom_events           Int64,
    bounces                 Int64,
    duration                Float64,
    extra_session_pageviews Int64,
    revenue_units           Int64,
    revenue_micros          Int32,
    engaged_ms              Int64,
    engaged_visitors        Int64,
    scroll_sum              Int64,
    scroll_count            Int64,
    event_duration          Float64
)
ENGINE = ReplacingMergeTree(build)
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, property, day, value)
SETTINGS allow_nullable_key = 1, non_replicated_deduplication_window = 10000,
         fsync_after_insert = 1, fsync_part_directory = 1;

-- Which site-days are rolled up: the current build, and the raw event count then.
CREATE TABLE IF NOT EXISTS rollup_days (
    site_id  LowCardinality(String),
    day      Date,
    build    UInt64,
    events   Int64,
    built_at DateTime64(6, 'UTC'),
    pruned   Bool
)
ENGINE = ReplacingMergeTree(build)
ORDER BY (site_id, day)
SETTINGS non_replicated_deduplication_window = 10000,
         fsync_after_insert = 1, fsync_part_directory = 1;

-- The rollup rows of each day's current build (what questions read).
CREATE VIEW IF NOT EXISTS daily_rollups_current AS
SELECT r.* FROM daily_rollups AS r
INNER JOIN (SELECT site_id, day, build FROM rollup_days FINAL) AS d
    ON r.site_id = d.site_id AND r.day = d.day AND r.build = d.build;

-- The logical rollup rows (DuckDB's daily_stats view: ROLLUP_COLUMNS, in that order).
CREATE VIEW IF NOT EXISTS daily_stats AS
SELECT site_id, day, property, value,
       visitors,
       visitors + extra_visits AS visits,
       visitors + extra_pageviews AS pageviews,
       visitors + extra_pageviews + custom_events AS events,
       custom_events,
       bounces,
       duration,
       visitors + extra_pageviews + extra_session_pageviews AS session_pageviews,
       CAST(revenue_units * 1000000 + revenue_micros, 'Decimal(38, 6)') / 1000000 AS revenue,
       engaged_ms,
       engaged_visitors,
       scroll_sum,
       scroll_count,
       event_duration
FROM daily_rollups_current;

-- A site's re-dating in progress (a timezone change, ClickHouseEventStore.redate_site): the
-- zone, the build its merge into pruned days' rollups uses, and the newest event it moves.
-- The row is written once the moved copies are staged whole, and deleted when they are in
-- events: a crash in between is finished from it on the next run.
CREATE TABLE IF NOT EXISTS redates (
    site_id String,
    zone    String,
    build   UInt64,
    until   DateTime64(6, 'UTC')
)
ENGINE = MergeTree
ORDER BY site_id
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1;

-- Imports (DuckDB's migrations events/006 and 007, app/storage/clickhouse/imports.py). An
-- import's raw events are the site's events whose session_id lies in its range; these
-- tables record what else it added, so that deleting it removes exactly that.
-- imports: one row per finished import (written last: a row here means it is whole).
CREATE TABLE IF NOT EXISTS imports (
    seq          Int32,
    site_id      String,
    source       LowCardinality(String),
    content_hash String,
    created_at   DateTime64(6, 'UTC')
)
ENGINE = MergeTree
ORDER BY (site_id, seq)
SETTINGS non_replicated_deduplication_window = 10000,
         fsync_after_insert = 1, fsync_part_directory = 1;

-- The site-days an import wrote, with its event count there; rolled: the day only has
-- rollups, to which the import's own rows (import_rollups) were added.
CREATE TABLE IF NOT EXISTS import_days (
    seq     Int32,
    site_id String,
    day     Date,
    events  Int64,
    rolled  Bool
)
ENGINE = MergeTree
ORDER BY (site_id, seq, day)
SETTINGS non_replicated_deduplication_window = 10000,
         fsync_after_insert = 1, fsync_part_directory = 1;

-- An import's own logical rollup rows (daily_stats' columns) on the days it touched.
CREATE TABLE IF NOT EXISTS import_rollups (
    seq               Int32,
    site_id           String,
    day               Date,
    property          LowCardinality(String),
    value             Nullable(String),
    visitors          Int64,
    visits            Int64,
    pageviews         Int64,
    events            Int64,
    custom_events     Int64,
    bounces           Int64,
    duration          Float64,
    session_pageviews Int64,
    revenue           Decimal(38, 6),
    engaged_ms        Int64,
    engaged_visitors  Int64,
    scroll_sum        Int64,
    scroll_count      Int64,
    event_duration    Float64
)
ENGINE = MergeTree
ORDER BY (site_id, seq, day, property)
SETTINGS non_replicated_deduplication_window = 10000,
         fsync_after_insert = 1, fsync_part_directory = 1;

-- Imported daily aggregates (a Plausible export's imported_* tables), kept apart from the
-- site's own data and added to answers only when asked; the dimension columns carry the
-- events table's names, so the compiler's terms apply to them unchanged.
CREATE TABLE IF NOT EXISTS imported_stats (
    seq              Int32,
    site_id          LowCardinality(String),
    day              Date,
    kind             LowCardinality(String),
    source           Nullable(String),
    referrer         Nullable(String),
    channel          Nullable(String),
    utm_source       Nullable(String),
    utm_medium       Nullable(String),
    utm_campaign     Nullable(String),
    utm_content      Nullable(String),
    utm_term         Nullable(String),
    hostname         Nullable(String),
    pathname         Nullable(String),
    entry_page       Nullable(String),
    exit_page        Nullable(String),
    name             Nullable(String),
    props            Map(String, String),
    country          Nullable(String),
    region           Nullable(String),
    city             Nullable(String),
    device           Nullable(String),
    browser          Nullable(String),
    browser_version  Nullable(String),
    os               Nullable(String),
    os_version       Nullable(String),
    visitors         Int64,
    visits           Int64,
    pageviews        Int64,
    events           Int64,
    bounces          Int64,
    duration         Float64,
    scroll_sum       Int64,
    scroll_count     Int64,
    engaged_ms       Int64,
    engaged_visitors Int64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, kind, day)
SETTINGS non_replicated_deduplication_window = 10000,
         fsync_after_insert = 1, fsync_part_directory = 1;

-- An import's write or delete in progress: ClickHouse has no transaction to span the
-- steps, so a row is written before the first and replaced by a `deleted` one after the
-- last (an insert: a DELETE would cost a mutation per import). op 'import': cut short,
-- it is rolled back at the next start (its rollup merge is the days whose current build
-- is `build`); op 'delete': it is finished (days already at `build` are done). Read FINAL.
CREATE TABLE IF NOT EXISTS import_steps (
    site_id String,
    seq     Int32,
    op      LowCardinality(String),
    build   UInt64,
    version UInt64,
    deleted UInt8
)
ENGINE = ReplacingMergeTree(version, deleted)
ORDER BY (site_id, seq)
SETTINGS non_replicated_deduplication_window = 10000,
         fsync_after_insert = 1, fsync_part_directory = 1;
