-- The writers' side of the day rollup (014): marking the stored days that writes change.
-- Marks the local days of the spans [los[i], his[i]] of website sites[i] that lie before
-- the website's sealing_to.
CREATE FUNCTION stats_days_mark(sites text[], los timestamptz[], his timestamptz[])
RETURNS void LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    -- every website written, not only those with a row yet: a website's first pass
    -- inserts its row and then waits for the writes that read no bound
    PERFORM pg_advisory_xact_lock_shared(1717990509, hashtext(w.website_id))
    FROM (SELECT DISTINCT website_id FROM unnest(sites) AS s (website_id)
          WHERE website_id IS NOT NULL ORDER BY 1) w;
    INSERT INTO stats_day_dirty AS d (website_id, day, seq)
    SELECT x.website_id, x.day, nextval('stats_day_dirty_seq')
    FROM (
        SELECT DISTINCT w.website_id, g.day::date AS day
        FROM unnest(sites, los, his) AS c (website_id, lo, hi)
        JOIN stats_day_sites w ON w.website_id = c.website_id AND c.lo < w.sealing_to
        CROSS JOIN LATERAL generate_series(
            (c.lo AT TIME ZONE w.zone)::date::timestamp,
            (least(c.hi, w.sealing_to - interval '1 microsecond') AT TIME ZONE w.zone)::date::timestamp,
            interval '1 day') AS g (day)
        ORDER BY 1, 2
    ) x
    ON CONFLICT (website_id, day) DO UPDATE SET seq = EXCLUDED.seq;
END
$$;

-- The days of the changed rows: from column TG_ARGV[0] to column TG_ARGV[1] of each
-- (events updated or deleted: ts to ts; inserted events come with their sessions'
-- upserts. Sessions inserted, updated or deleted: started_at to last_seen).
CREATE FUNCTION stats_days_mark_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'SELECT stats_days_mark(array_agg(website_id), array_agg(lo), array_agg(hi))
         FROM (SELECT website_id, min(%1$I) AS lo, max(%2$I) AS hi FROM changed
               GROUP BY website_id, date_trunc(''day'', %1$I), date_trunc(''day'', %2$I)) c',
        TG_ARGV[0], TG_ARGV[1]);
    RETURN NULL;
END
$$;

CREATE TRIGGER events_stats_days_delete AFTER DELETE ON events
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION stats_days_mark_changed('ts', 'ts');
CREATE TRIGGER events_stats_days_update_old AFTER UPDATE ON events
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION stats_days_mark_changed('ts', 'ts');
CREATE TRIGGER events_stats_days_update_new AFTER UPDATE ON events
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION stats_days_mark_changed('ts', 'ts');
CREATE TRIGGER sessions_stats_days_insert AFTER INSERT ON sessions
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION stats_days_mark_changed('started_at', 'last_seen');
CREATE TRIGGER sessions_stats_days_delete AFTER DELETE ON sessions
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION stats_days_mark_changed('started_at', 'last_seen');
CREATE TRIGGER sessions_stats_days_update_old AFTER UPDATE ON sessions
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION stats_days_mark_changed('started_at', 'last_seen');
CREATE TRIGGER sessions_stats_days_update_new AFTER UPDATE ON sessions
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION stats_days_mark_changed('started_at', 'last_seen');

-- TRUNCATE events (or sessions) leaves no day standing.
CREATE FUNCTION stats_days_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE stats_day_values, stats_day_hours, stats_days, visitor_numbers, stats_day_dirty;
    DELETE FROM stats_day_sites;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_stats_days_truncate AFTER TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION stats_days_truncate();
CREATE TRIGGER sessions_stats_days_truncate AFTER TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION stats_days_truncate();
