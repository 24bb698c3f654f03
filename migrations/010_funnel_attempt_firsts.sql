-- Reach counts without grouping by subject (db/queries/funnel_report.py, counts).
-- p<k> of a stored attempt = t1 of the subject's latest earlier stored attempt (in
-- (t1, sid) order) that reached step k, NULL when there is none; set for k <= depth.
-- A subject reaches step k in [lo, hi) iff exactly one of its attempts there is the
-- first to reach k: the one with depth >= k and (p<k> IS NULL OR p<k> < lo). So
-- "reached k" is a filtered count over the stored attempts of the range — no hash
-- table of ~150k subjects per report. p<k> only ever names earlier attempts, so the
-- sealer sets it when it stores an attempt (from the subject's stored attempts before
-- the chunk and the chunk's own), and nothing stored later changes it.
-- nx of a stored attempt = t1 of the subject's next stored attempt (in (t1, sid) order)
-- that went deeper than it (NULL: none yet). A subject's best attempt in [lo, hi) (the
-- deepest, then the earliest) is the one that is first to reach its own depth there and
-- has no deeper one after it in the range (nx IS NULL OR nx >= hi): daily and breakdown
-- reports filter instead of sorting every attempt by subject. The sealer sets nx on the
-- attempts it stores and on earlier ones when a deeper attempt arrives, and clears the
-- nx that point into attempts it computes again.
-- Stored attempts are dropped and every rollup is rebuilt by the background pass
-- (ATTEMPT_RULES_VERSION 2): reports read events until then.
DELETE FROM funnel_rollups;
TRUNCATE funnel_attempts;
ALTER TABLE funnel_attempts
    ADD COLUMN p1 timestamptz,
    ADD COLUMN p2 timestamptz,
    ADD COLUMN p3 timestamptz,
    ADD COLUMN p4 timestamptz,
    ADD COLUMN p5 timestamptz,
    ADD COLUMN p6 timestamptz,
    ADD COLUMN p7 timestamptz,
    ADD COLUMN p8 timestamptz,
    ADD COLUMN p9 timestamptz,
    ADD COLUMN p10 timestamptz,
    ADD COLUMN p11 timestamptz,
    ADD COLUMN p12 timestamptz,
    ADD COLUMN p13 timestamptz,
    ADD COLUMN p14 timestamptz,
    ADD COLUMN p15 timestamptz,
    ADD COLUMN p16 timestamptz,
    ADD COLUMN p17 timestamptz,
    ADD COLUMN p18 timestamptz,
    ADD COLUMN p19 timestamptz,
    ADD COLUMN p20 timestamptz,
    ADD COLUMN nx timestamptz;
DROP INDEX funnel_attempts_t1;
CREATE INDEX funnel_attempts_t1 ON funnel_attempts (funnel_id, t1)
    INCLUDE (subj, sid, depth, dur, nx, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13, p14, p15, p16, p17, p18, p19, p20);
-- the sealer's look-up of a subject's earlier attempts
CREATE INDEX funnel_attempts_subj ON funnel_attempts (funnel_id, subj, t1) INCLUDE (depth);
-- converted attempts (dur is set exactly when the last step was reached): time to convert
CREATE INDEX funnel_attempts_converted ON funnel_attempts (funnel_id, t1) INCLUDE (subj, dur)
    WHERE dur IS NOT NULL;
-- the nx that point at or after a given time (cleared when those attempts are recomputed)
CREATE INDEX funnel_attempts_nx ON funnel_attempts (funnel_id, nx) WHERE nx IS NOT NULL;
