-- Open funnel attempts (db/queries/funnel_rollup.py): the rollup now also stores attempts
-- whose window has not closed yet, as of a snapshot. `watermark`: events inserted later
-- with ts >= watermark do not unseal anything; instead their subjects are "touched" and
-- their attempts from watermark - window on are recomputed (by reports, and by the next
-- pass, which stores them again). `pending_watermark`: the watermark a sealer has
-- announced and is computing towards (writers check against it already). NULL: no open
-- attempts stored, every insert unseals what it can change (migration 009's rule).
ALTER TABLE funnel_rollups
    ADD COLUMN IF NOT EXISTS watermark timestamptz,
    ADD COLUMN IF NOT EXISTS pending_watermark timestamptz;
