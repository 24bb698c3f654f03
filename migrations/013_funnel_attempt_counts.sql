-- Per-quarter-hour counts of the stored funnel attempts (010), so that a report over a
-- range ending where the rollup is sealed does not read every stored attempt of the
-- range (db/queries/funnel_report.py, counts). For bucket b (15 minutes, UTC-aligned:
-- every time zone's midnight falls on one) and step k:
--   reached = stored attempts with t1 in b and depth >= k;
--   closed  = stored attempts whose p<k> (the subject's previous attempt reaching k)
--             lies in b.
-- A subject reaches step k in [lo, hi) once per attempt there with p<k> before lo, so
-- with lo on a bucket start and no stored attempt at or after hi, that count is
-- sum(reached - closed) over the buckets from lo up to hi: each attempt whose p<k> is
-- in the range closes exactly one attempt of the range (its previous one).
-- Statement triggers on insert and delete keep the counts equal to the table's contents
-- in every transaction; TRUNCATE funnel_attempts must truncate this table too.
CREATE TABLE funnel_attempt_counts (
    funnel_id uuid NOT NULL REFERENCES funnels (id) ON DELETE CASCADE,
    bucket    timestamptz NOT NULL,
    k         smallint NOT NULL,
    reached   integer NOT NULL,
    closed    integer NOT NULL,
    -- reports sum a range of buckets from the index alone
    PRIMARY KEY (funnel_id, bucket, k) INCLUDE (reached, closed)
);

-- One attempt's contributions, times sign: +1 to `reached` of (bucket of t1, k) and to
-- `closed` of (bucket of p<k>, k) for each k <= depth.
CREATE FUNCTION funnel_attempt_deltas(t1 timestamptz, depth smallint, p timestamptz[], sign integer)
RETURNS TABLE (bucket timestamptz, k integer, reached integer, closed integer)
LANGUAGE sql IMMUTABLE AS $$
    SELECT date_bin('15 minutes', x.at, '2000-01-01 00:00+00'), s.k,
           CASE WHEN x.closes THEN 0 ELSE sign END, CASE WHEN x.closes THEN sign ELSE 0 END
    FROM generate_series(1, depth) AS s (k),
         LATERAL (VALUES (false, t1), (true, p[s.k])) AS x (closes, at)
    WHERE x.at IS NOT NULL
$$;

-- The inserted (+1) or deleted (-1) rows. Funnels being deleted are skipped: their
-- counts go by cascade.
-- (jit off: its row estimates are huge, and a funnel's cascaded delete outside the
-- service's pools spent 0.4 s compiling)
CREATE FUNCTION funnel_attempt_counts_apply() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    changed text := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT *, 1 AS sign FROM new_rows'
        ELSE 'SELECT *, -1 AS sign FROM old_rows' END;
BEGIN
    EXECUTE format($sql$
    INSERT INTO funnel_attempt_counts AS c (funnel_id, bucket, k, reached, closed)
    SELECT a.funnel_id, x.bucket, x.k, sum(x.reached), sum(x.closed)
    FROM (%s) a, funnel_attempt_deltas(a.t1, a.depth, ARRAY[p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13, p14, p15, p16, p17, p18, p19, p20], a.sign) x
    WHERE EXISTS (SELECT 1 FROM funnels f WHERE f.id = a.funnel_id)
    GROUP BY a.funnel_id, x.bucket, x.k
    HAVING sum(x.reached) <> 0 OR sum(x.closed) <> 0
    ORDER BY a.funnel_id, x.bucket, x.k  -- rows locked in one order by any two writers
    ON CONFLICT (funnel_id, bucket, k) DO UPDATE
        SET reached = c.reached + EXCLUDED.reached, closed = c.closed + EXCLUDED.closed
    $sql$, changed);
    RETURN NULL;
END
$$;
CREATE TRIGGER funnel_attempt_counts_insert AFTER INSERT ON funnel_attempts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION funnel_attempt_counts_apply();
CREATE TRIGGER funnel_attempt_counts_delete AFTER DELETE ON funnel_attempts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION funnel_attempt_counts_apply();

-- Updates may change nx only (the sealer's): what is counted is replaced by DELETE and
-- INSERT. (A statement trigger on UPDATE would add up the old and new rows of every nx
-- update; this check calls its function only when it must fail.)
CREATE FUNCTION funnel_attempt_counts_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'funnel_attempts: funnel_id, t1, depth and p1..p20 are counted '
        '(funnel_attempt_counts); delete and insert the row instead';
END
$$;
CREATE TRIGGER funnel_attempt_counts_fixed BEFORE UPDATE ON funnel_attempts FOR EACH ROW
    WHEN (OLD.funnel_id IS DISTINCT FROM NEW.funnel_id OR OLD.t1 IS DISTINCT FROM NEW.t1
          OR OLD.depth IS DISTINCT FROM NEW.depth
          OR ARRAY[OLD.p1, OLD.p2, OLD.p3, OLD.p4, OLD.p5, OLD.p6, OLD.p7, OLD.p8, OLD.p9, OLD.p10, OLD.p11, OLD.p12, OLD.p13, OLD.p14, OLD.p15, OLD.p16, OLD.p17, OLD.p18, OLD.p19, OLD.p20]
             IS DISTINCT FROM ARRAY[NEW.p1, NEW.p2, NEW.p3, NEW.p4, NEW.p5, NEW.p6, NEW.p7, NEW.p8, NEW.p9, NEW.p10, NEW.p11, NEW.p12, NEW.p13, NEW.p14, NEW.p15, NEW.p16, NEW.p17, NEW.p18, NEW.p19, NEW.p20])
    EXECUTE FUNCTION funnel_attempt_counts_refuse();

-- what is stored already
INSERT INTO funnel_attempt_counts (funnel_id, bucket, k, reached, closed)
SELECT a.funnel_id, x.bucket, x.k, sum(x.reached), sum(x.closed)
FROM funnel_attempts a, funnel_attempt_deltas(a.t1, a.depth, ARRAY[p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13, p14, p15, p16, p17, p18, p19, p20], 1) x
GROUP BY a.funnel_id, x.bucket, x.k;
