-- Keeps funnel_rollups honest (008): every statement that inserts or deletes events
-- marks, per website, the attempts it may change as no longer sealed. An event at ts can
-- change the attempts with t1 in [ts - window, ts]; for the rows of one statement that
-- is [min(ts) - window, max(ts)]. Where that touches [sealed_from, max(sealed_until,
-- sealing_to)): if it reaches the start, the sealed interval starts after max(ts)
-- (retention deletes the oldest events: what stays sealed is still valid); otherwise it
-- ends at min(ts) - window. Either way `epoch` moves on, which makes a sealer that is
-- computing right now throw its chunk away.
-- The shared advisory lock per website pairs with the sealer's exclusive one
-- (db/queries/funnel_rollup.py): a sealer announcing `sealing_to` waits for writing
-- transactions that checked the old value, and later ones see the new one.
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
        SELECT r2.funnel_id,
               d.lo_ts - make_interval(secs => r2.window_seconds) AS lo,
               d.hi_ts + interval '1 microsecond' AS after_hi,
               d.lo_ts - make_interval(secs => r2.window_seconds) <= r2.sealed_from AS reaches_start
        FROM (SELECT website_id, min(ts) AS lo_ts, max(ts) AS hi_ts FROM changed
              GROUP BY website_id) d
        JOIN funnel_rollups r2 ON r2.website_id = d.website_id
        WHERE d.hi_ts >= r2.sealed_from
          AND d.lo_ts - make_interval(secs => r2.window_seconds)
              < greatest(r2.sealed_until, r2.sealing_to)
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
