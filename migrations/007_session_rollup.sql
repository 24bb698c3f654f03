-- footfall: outside-transaction (built CONCURRENTLY: writes go on during the build)
-- The sessions table doubles as the exact rollup of the stats scan's events side
-- (db/queries/stats_events_side.py, "session rollup"): a session whose events all lie
-- in one bucket of the range contributes its stored counts instead of its events.
-- That needs two more facts about a session:
-- * mixed_visitors: its events carry more than one visitor_id (then its events are read,
--   since each visitor counts). Kept by db/writer.py's MERGE; back-filled here.
-- * sessions_site_long: the sessions longer than an hour, by last_seen, so that the
--   sessions started long before a range but still active in it are found without
--   scanning everything that started before it (shorter ones are found by
--   sessions_site_started within the hour before the range).
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS mixed_visitors boolean NOT NULL DEFAULT false;
UPDATE sessions s SET mixed_visitors = true
FROM (SELECT website_id, session_id FROM events
      WHERE event_type NOT IN ('session_start', 'session_end')
      GROUP BY website_id, session_id HAVING min(visitor_id) <> max(visitor_id)) m
WHERE s.website_id = m.website_id AND s.session_id = m.session_id AND NOT s.mixed_visitors;
DROP INDEX CONCURRENTLY IF EXISTS sessions_site_long;
CREATE INDEX CONCURRENTLY sessions_site_long ON sessions (website_id, last_seen)
    INCLUDE (started_at) WHERE last_seen - started_at > interval '1 hour';
