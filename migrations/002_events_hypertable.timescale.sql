-- TimescaleDB path only (the runner skips files named *.timescale.sql on plain
-- PostgreSQL). `events` becomes a hypertable on event time with 1-day chunks,
-- compressed after 7 days segmented by website_id. Retention is added at start-up by
-- db/timescale.py because RETENTION_DAYS is a setting, not a migration constant.
CREATE EXTENSION IF NOT EXISTS timescaledb;
SELECT create_hypertable('events', by_range('ts', INTERVAL '1 day'), migrate_data => true);
ALTER TABLE events SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'website_id',
    timescaledb.compress_orderby = 'ts DESC, id'
);
SELECT add_compression_policy('events', INTERVAL '7 days');
