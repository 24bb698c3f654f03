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
-- Statement triggers keep the counts equal to the table's contents in every
-- transaction; TRUNCATE funnel_attempts must truncate this table too.
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

-- The changed rows: +1 for each new one, -1 for each old one (an UPDATE of nx alone
-- cancels out). Funnels being deleted are skipped: their counts go by cascade.
CREATE FUNCTION funnel_attempt_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed text := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT *, 1 AS sign FROM new_rows'
        WHEN 'DELETE' THEN 'SELECT *, -1 AS sign FROM old_rows'
        ELSE 'SELECT *, 1 AS sign FROM new_rows UNION ALL SELECT *, -1 FROM old_rows' END;
BEGIN
    EXECUTE format($sql$
    INSERT INTO funnel_attempt_counts AS c (funnel_id, bucket, k, reached, closed)
    SELECT a.funnel_id, x.bucket, x.k, sum(x.reached), sum(x.closed)
    FROM (%s) a, funnel_attempt_deltas(a.t1, a.depth, ARRAY[p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13, p14, p15, p16, p17, p18, p19, p20], a.sign) x
    WHERE EXISTS (SELECT 1 FROM funnels f WHERE f.id = a.funnel_id)
    GROUP BY a.funnel_id, x.bucket, x.k
    HAVING sum(x.reached) <> 0 OR sum(x.closed) <> 0
    ON CONFLICT (funnel_id, bucket, k) DO UPDATE
        SET reached = c.reached + EXCLUDED.reached, closed = c.closed + EXCLUDED.closed
    $sql$, changed);
    RETURN NULL;
END
$$;
CREATE TRIGGER funnel_attempt_counts_insert AFTER INSERT ON funnel_attempts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION funnel_attempt_counts_apply();
CREATE TRIGGER funnel_attempt_counts_update AFTER UPDATE ON funnel_attempts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION funnel_attempt_counts_apply();
CREATE TRIGGER funnel_attempt_counts_delete AFTER DELETE ON funnel_attempts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION funnel_attempt_counts_apply();

-- what is stored already
INSERT INTO funnel_attempt_counts (funnel_id, bucket, k, reached, closed)
SELECT a.funnel_id, x.bucket, x.k, sum(x.reached), sum(x.closed)
FROM funnel_attempts a, funnel_attempt_deltas(a.t1, a.depth, ARRAY[p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13, p14, p15, p16, p17, p18, p19, p20], 1) x
GROUP BY a.funnel_id, x.bucket, x.k;
