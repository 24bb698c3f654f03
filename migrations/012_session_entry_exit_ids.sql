-- The ids of a session's entry and exit page views, so that two page views at the same
-- time are ordered by id (as within one batch) whichever request arrives first
-- (metrics.md: no number may depend on arrival order). db/writer.py's MERGE keeps them;
-- rows written before this migration have NULL ids and keep their pages on such a tie.
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS entry_id uuid, ADD COLUMN IF NOT EXISTS exit_id uuid;
