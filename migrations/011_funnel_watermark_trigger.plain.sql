-- Migration 009's trigger function, with migration 010's watermark: inserted events at or
-- after a funnel's watermark (or the one being announced) are left to the "touched"
-- recomputation and do not unseal; older inserted events, and every deleted or updated
-- one, unseal as before.
CREATE OR REPLACE FUNCTION funnel_rollups_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(1717990508, hashtext(website_id))
    FROM (SELECT DISTINCT website_id FROM changed ORDER BY 1) s;
    UPDATE funnel_rollups r SET
        sealed_from  = CASE WHEN x.reaches_start THEN x.after_hi ELSE r.sealed_from END,
        sealed_until = CASE WHEN x.reaches_start THEN greatest(r.sealed_until, x.after_hi)
                            ELSE least(r.sealed_until, x.lo) END,
        sealing_to   = CASE WHEN x.reaches_start THEN greatest(r.sealed_until, x.after_hi)
                            ELSE least(r.sealed_until, x.lo) END,
        epoch = r.epoch + 1
    FROM (
        SELECT d.funnel_id, d.lo, d.hi + interval '1 microsecond' AS after_hi,
               d.lo <= d.sealed_from AS reaches_start
        FROM (
            SELECT r2.funnel_id, r2.sealed_from,
                   min(c.ts) - make_interval(secs => r2.window_seconds) AS lo, max(c.ts) AS hi,
                   greatest(r2.sealed_until, r2.sealing_to) AS sealed_end
            FROM changed c JOIN funnel_rollups r2 ON r2.website_id = c.website_id
            WHERE TG_OP <> 'INSERT'
               OR c.ts < coalesce(greatest(r2.watermark, r2.pending_watermark), 'infinity')
            GROUP BY r2.funnel_id, r2.sealed_from, r2.window_seconds, r2.sealed_until,
                     r2.sealing_to
        ) d
        WHERE d.hi >= d.sealed_from AND d.lo < d.sealed_end
    ) x
    WHERE r.funnel_id = x.funnel_id;
    RETURN NULL;
END
$$;
