"""Sealing funnel attempts into ``funnel_attempts`` (migrations 008 and 009).

An attempt (one step-1 event of a subject, how deep it got and how long it took) depends
only on the subject's events in ``[t1, t1 + window]``, never on a report's range. A
funnel's rollup row says that every attempt with ``sealed_from <= t1 < sealed_until`` is
stored for the definition with digest ``spec_hash`` — correct for all events, except
that subjects with events at or after ``watermark`` (*touched* subjects) may have stale
attempts from ``watermark - window`` on. Reports read the stored attempts and compute
the rest from events (``AttemptsSql.rollup_parts``, ``bounds``).

The events trigger keeps that true: an inserted event older than the watermark, and
any deleted one, takes ``[min(ts) - window, max(ts)]`` out of the stored interval and
moves ``epoch`` on; an inserted event at or after the watermark only touches its
subject.

One ``seal_step`` call moves ``sealed_until`` forward by one chunk (at least 7 days of
``t1``, at least one window, and at least up to the website's next event), in two
transactions:

1. *Announce*, under the website's exclusive advisory lock (writers hold it shared while
   their trigger checks the rollup rows): read the row, reset it when the definition
   changed or it does not start early enough, else set ``sealing_to`` to the chunk's
   end and ``pending_watermark`` to the new watermark. Writers that checked the old
   values have committed by then; later ones see the new ones and, if their events are
   older than the new watermark and touch the chunk, move ``epoch`` on.
2. *Compute*: drop stored attempts outside ``[sealed_from, sealed_until)``, compute again
   the touched subjects' attempts (since the old watermark) and the chunk's attempts
   for everyone (the report's own SQL), and set ``sealed_until`` and ``watermark`` only
   if ``epoch`` is unchanged; otherwise roll back (the next call starts again from the
   lowered end).

Two sealers never work on the same funnel: each holds a session advisory lock on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import asyncpg

from db.errors import translated
from db.queries.dimensions import NOT_IGNORED
from db.queries.funnel_sql import AttemptsSql, FunnelSpec, spec_hash
from db.tracing import tag

#: Shared by writers (trigger of migration 009), exclusive while a sealer announces.
WEBSITE_LOCK = 1717990508
#: Held (session level) by the one sealer working on a funnel.
FUNNEL_LOCK = 1717990509
MIN_CHUNK = timedelta(days=7)
#: More subjects with events since the watermark than this, and their open attempts are
#: computed for everyone instead (a report's, or a pass's, list of subjects stays small).
MAX_TOUCHED = 20_000
#: A reset when the stored interval starts this much after the wanted start (retention
#: runs with the database's clock, sealers with the process's).
START_SLACK = timedelta(hours=1)

StepResult = Literal["reset", "sealed", "done", "busy", "conflict"]


@dataclass(frozen=True)
class RollupState:
    """A funnel's sealed interval of ``t1`` (UTC instants), for ``spec_hash``."""

    spec_hash: str
    sealed_from: datetime
    sealed_until: datetime
    epoch: int


class _Moved(Exception):
    """Writers changed events in the chunk while it was computed."""


#: Locks the funnel against deletion until the transaction ends (None: already gone).
_KEEP_FUNNEL = "SELECT 1 FROM funnels WHERE id = $1::uuid FOR KEY SHARE"


async def state(conn: asyncpg.Pool | asyncpg.Connection, funnel_id: str) -> RollupState | None:
    async with translated():
        row = await conn.fetchrow(
            "SELECT spec_hash, sealed_from, sealed_until, epoch FROM funnel_rollups"
            " WHERE funnel_id = $1::uuid",
            funnel_id,
        )
    return None if row is None else RollupState(**dict(row))


async def seal_step(
    pool: asyncpg.Pool, spec: FunnelSpec, wanted_start: datetime, target: datetime
) -> StepResult:
    """Seal one more chunk of ``spec``'s attempts towards ``target`` (exclusive), the
    stored interval starting at ``wanted_start`` at the latest. ``busy``: another sealer
    has this funnel; ``conflict``: writers touched the chunk, nothing was stored."""
    digest = spec_hash(spec)
    async with translated(), pool.acquire() as conn:  # "done" too for a deleted funnel
        got = await conn.fetchval(
            "SELECT pg_try_advisory_lock($1, hashtext($2))", FUNNEL_LOCK, spec.funnel_id
        )
        if not got:
            return "busy"
        try:
            async with conn.transaction():
                announced = await _announce(conn, spec, digest, wanted_start, target)
            if isinstance(announced, str):
                return announced
            try:
                async with conn.transaction():
                    await _compute(conn, spec, announced)
            except _Moved:
                return "conflict"
            return "sealed"
        finally:
            await conn.execute(
                "SELECT pg_advisory_unlock($1, hashtext($2))", FUNNEL_LOCK, spec.funnel_id
            )


@dataclass(frozen=True)
class _Chunk:
    """What an announcement fixed: the stored interval's start, the chunk ``[start,
    end)``, the epoch to find unchanged, and the watermarks before and after."""

    sealed_from: datetime
    start: datetime
    end: datetime
    epoch: int
    watermark: datetime | None
    new_watermark: datetime


async def _announce(
    conn: asyncpg.Connection,
    spec: FunnelSpec,
    digest: str,
    wanted_start: datetime,
    target: datetime,
) -> StepResult | _Chunk:
    await conn.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))", WEBSITE_LOCK, spec.website_id
    )
    if await conn.fetchval(_KEEP_FUNNEL, spec.funnel_id) is None:
        return "done"
    row = await conn.fetchrow(
        "SELECT spec_hash, sealed_from, sealed_until, epoch, watermark FROM funnel_rollups"
        " WHERE funnel_id = $1::uuid FOR UPDATE",
        spec.funnel_id,
    )
    if row is None or row["spec_hash"] != digest or row["sealed_from"] > wanted_start + START_SLACK:
        await conn.execute(
            """INSERT INTO funnel_rollups AS r (funnel_id, website_id, spec_hash, window_seconds,
                   sealed_from, sealed_until, sealing_to)
               VALUES ($1::uuid, $2, $3, $4, $5, $5, $5)
               ON CONFLICT (funnel_id) DO UPDATE SET spec_hash = $3, window_seconds = $4,
                   sealed_from = $5, sealed_until = $5, sealing_to = $5, epoch = r.epoch + 1,
                   watermark = NULL, pending_watermark = NULL""",
            spec.funnel_id, spec.website_id, digest, int(spec.window.total_seconds()),
            wanted_start,
        )  # fmt: skip
        return "reset"
    start: datetime = row["sealed_until"]
    if start >= target:
        return "done"
    # no step-1 event before the website's next event: skip to it (history is mostly empty)
    first = await conn.fetchval(
        "SELECT min(ts) FROM events WHERE website_id = $1 AND ts >= $2", spec.website_id, start
    )
    end = min(max(start + max(MIN_CHUNK, spec.window), first or target), target)
    await conn.execute(
        """UPDATE funnel_rollups SET sealing_to = $2, pending_watermark = $3
           WHERE funnel_id = $1::uuid""",
        spec.funnel_id, end, target,
    )  # fmt: skip
    return _Chunk(row["sealed_from"], start, end, row["epoch"], row["watermark"], target)


async def touched_subjects(
    conn: asyncpg.Connection, spec: FunnelSpec, since: datetime
) -> list[str] | None:
    """Subjects with events at or after ``since`` (their newer attempts may have changed
    since they were stored); ``None`` when more than ``MAX_TOUCHED``."""
    rows = await conn.fetch(
        f"""SELECT DISTINCT {spec.subject_column} AS subj FROM events e
            WHERE website_id = $1 AND ts >= $2 AND {NOT_IGNORED} LIMIT $3""",
        spec.website_id, since, MAX_TOUCHED + 1,
    )  # fmt: skip
    return None if len(rows) > MAX_TOUCHED else [r["subj"] for r in rows]


async def bounds(
    conn: asyncpg.Connection, spec: FunnelSpec, start: datetime, end: datetime
) -> tuple[datetime, datetime, list[str]]:
    """For a report over ``[start, end)`` (``AttemptsSql.fill``): ``lb``, where stored
    attempts stop answering (``start``: none do); and the touched subjects, whose
    attempts from ``touched_from`` on are computed instead of read. Run it in the
    report's snapshot."""
    row = await conn.fetchrow(
        """SELECT sealed_until, watermark FROM funnel_rollups
           WHERE funnel_id = $1::uuid AND spec_hash = $2 AND sealed_from <= $3
             AND sealed_until > $3""",
        spec.funnel_id, spec_hash(spec), start,
    )  # fmt: skip
    if row is None:
        return start, start, []
    lb = min(row["sealed_until"], end)
    watermark: datetime | None = row["watermark"]
    if watermark is None:
        return lb, lb, []
    touched_from = max(start, watermark - spec.window)
    if touched_from >= lb:
        return lb, lb, []
    touched = await touched_subjects(conn, spec, watermark)
    if touched is None:  # too many: the open attempts are computed for everyone
        return touched_from, touched_from, []
    return lb, touched_from, touched


async def _compute(conn: asyncpg.Connection, spec: FunnelSpec, chunk: _Chunk) -> None:
    # background work: not bound by STATEMENT_TIMEOUT, which is meant for requests
    await conn.execute(
        "SET LOCAL jit = off; SET LOCAL work_mem = '64MB'; SET LOCAL statement_timeout = 0"
    )
    if await conn.fetchval(_KEEP_FUNNEL, spec.funnel_id) is None:
        raise _Moved  # deleted since the announcement: nothing to store
    # subjects with events since the last watermark: their stored attempts from
    # watermark - window on are computed again (everyone's, when there are too many)
    start, again, touched = chunk.start, chunk.start, []
    if chunk.watermark is not None:
        again = max(chunk.sealed_from, chunk.watermark - spec.window)
        found = await touched_subjects(conn, spec, chunk.watermark) if again < start else []
        if found is None:
            start = again
        else:
            touched = found
    await conn.execute(
        """DELETE FROM funnel_attempts WHERE funnel_id = $1::uuid
           AND (t1 >= $2 OR t1 < $3 OR (t1 >= $4 AND subj = ANY($5::text[])))""",
        spec.funnel_id, start, chunk.sealed_from, again, touched,
    )  # fmt: skip
    # the next deeper attempt of what stays may have been one of those: set again below
    await conn.execute(
        """UPDATE funnel_attempts SET nx = NULL WHERE funnel_id = $1::uuid AND nx IS NOT NULL
           AND (nx >= $2 OR (nx >= $3 AND subj = ANY($4::text[])))""",
        spec.funnel_id, start, again, touched,
    )  # fmt: skip
    q = AttemptsSql(spec)
    fid = q.param(spec.funnel_id)
    if touched:
        q.touching(again, touched)
    sql = q.attempts() + _stored_insert(spec, fid)
    await conn.execute(tag(sql), spec.website_id, start, chunk.end, spec.window, *q.args)
    moved = await conn.fetchval(
        """UPDATE funnel_rollups SET sealed_until = $2, sealing_to = $2, watermark = $5
           WHERE funnel_id = $1::uuid AND epoch = $3 AND sealed_until = $4 RETURNING false""",
        spec.funnel_id, chunk.end, chunk.epoch, chunk.start, chunk.new_watermark,
    )  # fmt: skip
    if moved is None:
        raise _Moved


def _stored_insert(spec: FunnelSpec, fid: str) -> str:
    """``INSERT`` of the attempts (``AttemptsSql.attempts()``, run first) into
    ``funnel_attempts`` with p1..pn and nx (migration 010), and ``nx`` of the subjects' earlier stored
    attempts that these go deeper than. The stored attempts of these subjects all lie
    before them: the sealer deletes the attempts it computes again first (and clears
    the ``nx`` pointing at them).

    * p<k> (k <= depth): t1 of the subject's latest earlier attempt reaching k, among
      this statement's attempts (ordered by t1, sid) or else the stored ones;
    * nx: t1 of the subject's next attempt deeper than this one, among this
      statement's attempts (NULL: none yet; a later pass may set it)."""
    n = len(spec.steps)
    ks = range(1, n + 1)
    carry = ", ".join(f"max(f.t1) FILTER (WHERE f.depth >= {k}) AS c{k}" for k in ks)
    firsts = ", ".join(
        f"CASE WHEN a.depth >= {k} THEN coalesce(max(a.t1) FILTER (WHERE a.depth >= {k})"
        f" OVER w, c.c{k}) END"
        for k in ks
    )
    names = ", ".join(f"p{k}" for k in ks)
    deeper = range(2, n + 1)  # next attempt reaching k = depth + 1 or more
    nx_new = " ".join(
        f"WHEN {k - 1} THEN min(a.t1) FILTER (WHERE a.depth >= {k}) OVER wf" for k in deeper
    )
    firsts_new = ", ".join(f"min(t1) FILTER (WHERE depth >= {k}) AS n{k}" for k in deeper)
    nx_old = " ".join(f"WHEN {k - 1} THEN x.n{k}" for k in deeper)
    # carry and older look up each subject of the chunk through funnel_attempts_subj
    # (LATERAL; OFFSET 0 keeps the planner from flattening it into a join). As a join,
    # its plan hung on the estimate of the funnel's stored rows: a funnel absent from
    # the table's statistics is estimated at one row, and a nested loop rescanned the
    # chunk's attempts once per stored attempt (a 7-day chunk ran for over 14 minutes).
    return f""",
carry AS (
  SELECT s.subj, c.* FROM (SELECT DISTINCT subj FROM att) s CROSS JOIN LATERAL (
    SELECT {carry} FROM funnel_attempts f
    WHERE f.funnel_id = {fid}::uuid AND f.subj = s.subj) c),
nxt AS (SELECT subj, {firsts_new} FROM att GROUP BY subj),
older AS (
  UPDATE funnel_attempts f SET nx = o.nx
  FROM (SELECT g.ctid AS row_id, CASE g.depth {nx_old} END AS nx
        FROM nxt x CROSS JOIN LATERAL (
          SELECT ctid, depth FROM funnel_attempts g
          WHERE g.funnel_id = {fid}::uuid AND g.subj = x.subj AND g.nx IS NULL
            AND g.depth < {n} OFFSET 0) g) o
  WHERE f.ctid = o.row_id AND o.nx IS NOT NULL
  RETURNING 1)
INSERT INTO funnel_attempts (funnel_id, t1, subj, sid, depth, dur, {names}, nx)
SELECT {fid}::uuid, a.t1, a.subj, a.sid, a.depth, a.dur, {firsts},
   CASE a.depth {nx_new} END
FROM att a LEFT JOIN carry c ON c.subj = a.subj
WINDOW w AS (PARTITION BY a.subj ORDER BY a.t1, a.sid
         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
   wf AS (PARTITION BY a.subj ORDER BY a.t1, a.sid
          ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)"""
