-- The events trigger of 009, one rule wider: changed events whose range [min(ts) -
-- window, max(ts)] begins after the stored interval's start also count as reaching it
-- when the website has no event between that start and the range (so no stored attempt
-- lies there). Retention deletes each website's oldest events first
-- (db/queries/retention.py): its batches then move the start past what they delete, where
-- before a batch beginning more than a window after the start (a quiet night before the
-- oldest remaining event) unsealed everything stored after it and the next pass rebuilt
-- the funnel's whole history. The check is an index probe (events_site_ts), made only for
-- the writes that touch the stored interval (late inserts and deletions).
-- And the start never moves back: a writer that decided on an older snapshot (another
-- writer's deletion moved the start past its events meanwhile) leaves the newer start.
CREATE OR REPLACE FUNCTION funnel_rollups_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(1717990508, hashtext(website_id))
    FROM (SELECT DISTINCT website_id FROM changed ORDER BY 1) s;
    UPDATE funnel_rollups r SET
        sealed_from  = CASE WHEN x.reaches_start THEN greatest(r.sealed_from, x.after_hi)
                            ELSE r.sealed_from END,
        sealed_until = CASE WHEN x.reaches_start THEN greatest(r.sealed_until, x.after_hi)
                            ELSE least(r.sealed_until, x.lo) END,
        sealing_to   = CASE WHEN x.reaches_start THEN greatest(r.sealed_until, x.after_hi)
                            ELSE least(r.sealed_until, x.lo) END,
        epoch = r.epoch + 1
    FROM (
        SELECT d.funnel_id, d.lo, d.hi + interval '1 microsecond' AS after_hi,
               d.lo <= d.sealed_from OR NOT EXISTS (
                   SELECT 1 FROM events e WHERE e.website_id = d.website_id
                     AND e.ts >= d.sealed_from AND e.ts < d.lo) AS reaches_start
        FROM (
            SELECT r2.funnel_id, r2.website_id, r2.sealed_from,
                   min(c.ts) - make_interval(secs => r2.window_seconds) AS lo, max(c.ts) AS hi,
                   greatest(r2.sealed_until, r2.sealing_to) AS sealed_end
            FROM changed c JOIN funnel_rollups r2 ON r2.website_id = c.website_id
            WHERE TG_OP <> 'INSERT'
               OR c.ts < coalesce(greatest(r2.watermark, r2.pending_watermark), 'infinity')
            GROUP BY r2.funnel_id, r2.website_id, r2.sealed_from, r2.window_seconds,
                     r2.sealed_until, r2.sealing_to
        ) d
        WHERE d.hi >= d.sealed_from AND d.lo < d.sealed_end
    ) x
    WHERE r.funnel_id = x.funnel_id;
    RETURN NULL;
END
$$;
