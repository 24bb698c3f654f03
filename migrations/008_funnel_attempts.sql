-- Funnel attempt rollup (db/queries/funnel_rollup.py). A funnel attempt (one step-1
-- event of a subject and how far it got) depends only on that subject's events from
-- its step-1 event to the end of the conversion window, never on the report's range.
-- So attempts are stored once they are settled and reports read them instead of the
-- events: `funnel_attempts` holds every attempt of a funnel with
-- sealed_from <= t1 < sealed_until, for the definition whose digest is `spec_hash`.
-- The writer trigger (009, plain PostgreSQL) shrinks that interval, and bumps `epoch`,
-- whenever events are inserted or deleted that could change a stored attempt.
CREATE TABLE funnel_rollups (
    funnel_id      uuid PRIMARY KEY REFERENCES funnels (id) ON DELETE CASCADE,
    website_id     text NOT NULL,
    spec_hash      text NOT NULL,
    window_seconds integer NOT NULL,
    sealed_from    timestamptz NOT NULL,
    sealed_until   timestamptz NOT NULL,
    -- the upper end the sealer is computing towards (its writers' check covers it too)
    sealing_to     timestamptz NOT NULL,
    epoch          bigint NOT NULL DEFAULT 0
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
