-- Keeps funnel_rollups honest (008): every statement that inserts, updates or deletes
-- events marks, per funnel, the attempts it may change as no longer sealed, except
-- inserted events at or after the funnel's watermark (or the one being announced),
-- which only touch their subjects (008). An event at ts can change the attempts with
-- t1 in [ts - window, ts]; for the rows of one statement that is
-- [min(ts) - window, max(ts)]. Where that touches [sealed_from, max(sealed_until,
-- sealing_to)): if it reaches the start, the sealed interval starts after max(ts)
-- (retention deletes the oldest events: what stays sealed is still valid); otherwise it
-- ends at min(ts) - window. Either way `epoch` moves on, which makes a sealer that is
-- computing right now throw its chunk away.
-- The shared advisory lock per website pairs with the sealer's exclusive one
-- (db/queries/funnel_rollup.py): a sealer announcing `sealing_to` and
-- `pending_watermark` waits for writing transactions that checked the old values, and
-- later ones see the new ones.
-- Only on plain PostgreSQL: TimescaleDB hypertables refuse transition tables, so there
-- the rollup is not used (reports read events).
CREATE FUNCTION funnel_rollups_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER events_funnel_rollups_insert AFTER INSERT ON events
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION funnel_rollups_dirty();
CREATE TRIGGER events_funnel_rollups_delete AFTER DELETE ON events
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION funnel_rollups_dirty();
-- Nothing updates events today; should anything, both the old and the new rows count.
CREATE TRIGGER events_funnel_rollups_update_old AFTER UPDATE ON events
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION funnel_rollups_dirty();
CREATE TRIGGER events_funnel_rollups_update_new AFTER UPDATE ON events
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION funnel_rollups_dirty();
