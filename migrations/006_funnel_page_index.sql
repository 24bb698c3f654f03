-- footfall: outside-transaction (built CONCURRENTLY: writes go on during the build)
-- Funnel reports read the page views of a step by path pattern: the pattern's literal
-- prefix becomes a range on `page` here (C collation: LIKE prefixes compare bytewise),
-- and visitor_id/session_id are included so that the scan never visits the table
-- (db/queries/funnel_report.py). Page views only; custom steps use events_site_type_ts.
DROP INDEX CONCURRENTLY IF EXISTS events_funnel_page;
CREATE INDEX CONCURRENTLY events_funnel_page ON events (website_id, page COLLATE "C", ts)
    INCLUDE (visitor_id, session_id) WHERE event_type = 'pageview';
