-- footfall: outside-transaction (built CONCURRENTLY: writes go on during the build)
-- Stats read path (db/queries/stats.py): the scan reads, per event in [from, to), only
-- website_id, ts, visitor_id, session_id, event_type and page. Covering them lets the
-- scan be an index-only scan (no heap visits: on 1.2M events of one website, ~13k index
-- pages instead of ~88k heap pages interleaved with other websites' rows). It serves
-- every (website_id, ts) range query too; events_site_ts is kept for the other readers.
DROP INDEX CONCURRENTLY IF EXISTS events_site_ts_stats;
CREATE INDEX CONCURRENTLY events_site_ts_stats ON events (website_id, ts)
    INCLUDE (visitor_id, session_id, event_type, page);
