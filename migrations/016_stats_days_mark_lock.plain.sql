-- The writers' lock of the day rollup (015) for every website written, not only those
-- already in stats_day_sites: a website's first sealing pass inserts its row, then takes
-- the lock exclusively to wait for the writes that read no bound; a write that took no
-- lock (no row yet) was not waited for and its day was stored without it, clean.
CREATE OR REPLACE FUNCTION stats_days_mark(sites text[], los timestamptz[], his timestamptz[])
RETURNS void LANGUAGE plpgsql SET jit = off AS $$
BEGIN
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
