-- Funnel attempt rollup (db/queries/funnel_rollup.py). A funnel attempt (one step-1
-- event of a subject and how far it got) depends only on that subject's events from
-- its step-1 event to the end of the conversion window, never on the report's range.
-- So attempts are stored and reports read them instead of the events:
-- `funnel_attempts` holds every attempt of a funnel with sealed_from <= t1 <
-- sealed_until, for the definition whose digest is `spec_hash` (db/queries/funnel_rollup.py).
-- Attempts whose window is still open are stored too, as of a pass: events inserted
-- later with ts >= `watermark` do not unseal anything; their subjects are "touched" and
-- their attempts from watermark - window on are recomputed (by reports, and by the next
-- pass, which stores them again). The events trigger (009, plain PostgreSQL) shrinks
-- the interval, and bumps `epoch`, for every other insert, update or delete that could
-- change a stored attempt.
CREATE TABLE funnel_rollups (
    funnel_id      uuid PRIMARY KEY REFERENCES funnels (id) ON DELETE CASCADE,
    website_id     text NOT NULL,
    spec_hash      text NOT NULL,
    window_seconds integer NOT NULL,
    sealed_from    timestamptz NOT NULL,
    sealed_until   timestamptz NOT NULL,
    -- the upper end the sealer is computing towards (its writers' check covers it too)
    sealing_to     timestamptz NOT NULL,
    epoch          bigint NOT NULL DEFAULT 0,
    -- NULL: no open attempts stored (every insert unseals what it can change)
    watermark      timestamptz,
    -- the watermark a sealer has announced and is computing towards
    pending_watermark timestamptz
);
CREATE INDEX funnel_rollups_site ON funnel_rollups (website_id);

CREATE TABLE funnel_attempts (
    funnel_id uuid NOT NULL REFERENCES funnels (id) ON DELETE CASCADE,
    t1        timestamptz NOT NULL,
    subj      text COLLATE "C" NOT NULL,
    sid       text NOT NULL,
    depth     smallint NOT NULL,
    dur       float8
);
CREATE INDEX funnel_attempts_t1 ON funnel_attempts (funnel_id, t1) INCLUDE (subj, sid, depth, dur);
