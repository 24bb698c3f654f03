"""The ingest writer: group commit of events and their session upserts.

Requests hand their validated rows to ``BatchWriter.write`` and wait. Flusher tasks
take whatever is queued (up to ``batch_size`` rows, waiting at most ``batch_timeout``
seconds for more) and write it in ONE transaction: COPY into a temporary table, then
``INSERT … ON CONFLICT DO NOTHING`` into ``events`` (skipping ids the website already
has, at any time) and the session upserts computed from the rows actually inserted (so
a resent event id is never counted twice). Every
waiting request is answered only after that transaction commits. If a group fails
for a reason other than the database being unreachable, each request is retried
alone so that one request's problem cannot sink another's rows.

``write_rows(conn, rows)`` is that transaction's body; the queue-mode consumer
(``db.ingest_queue``) commits through ``BatchWriter.commit`` so that both paths share
the SQL, the metrics observers and the commit hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg

from db.errors import DatabaseError, DatabaseUnavailable, translate

log = logging.getLogger("footfall.writer")

EVENT_COLUMNS: tuple[str, ...] = (
    "website_id", "ts", "id", "event_type", "visitor_id", "session_id", "page",
    "referrer", "referrer_host", "utm_source", "utm_medium", "utm_campaign", "utm_term",
    "utm_content", "country", "city", "browser", "os", "device", "screen", "time_on_page",
    "properties", "received_at",
)  # fmt: skip

EventRow = tuple[Any, ...]  # values in EVENT_COLUMNS order

_FIRST = ("referrer", "referrer_host", "utm_source", "utm_medium", "utm_campaign", "utm_term",
          "utm_content", "country", "city", "browser", "os", "device")  # fmt: skip
_NOT_COUNTED = "('session_start', 'session_end')"

_FIRST_AGG = ",\n".join(f"(array_agg({c} ORDER BY ts, id))[1] AS {c}" for c in _FIRST)
_FIRST_SET = ",\n".join(
    f"{c} = CASE WHEN newer THEN t.{c} ELSE EXCLUDED.{c} END" for c in (*_FIRST, "visitor_id")
)

# Entry/exit page views ordered by (ts, id) across batches as within one: a tie in time
# goes to the smaller (entry) or larger (exit) id, whichever arrived first. A row stored
# before migration 012 (NULL id) keeps its page on a tie.
_NEWER_ENTRY = ("t.entry_ts IS NULL OR (EXCLUDED.entry_ts, EXCLUDED.entry_id)"
                " < (t.entry_ts, t.entry_id)")  # fmt: skip
_NEWER_EXIT = "t.exit_ts IS NULL OR (EXCLUDED.exit_ts, EXCLUDED.exit_id) > (t.exit_ts, t.exit_id)"
_ENTRY_SET = ",\n".join(
    f"{c} = CASE WHEN {_NEWER_ENTRY} THEN EXCLUDED.{c} ELSE t.{c} END"
    for c in ("entry_ts", "entry_page", "entry_id")
)
_EXIT_SET = ",\n".join(
    f"{c} = CASE WHEN {_NEWER_EXIT} THEN EXCLUDED.{c} ELSE t.{c} END"
    for c in ("exit_ts", "exit_page", "exit_id")
)

CREATE_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS ingest_events (LIKE events INCLUDING DEFAULTS)"
    " ON COMMIT DELETE ROWS"
)

# An event id is stored once per website, whatever its time: a resent event whose time the
# server chose (none sent, or outside the accepted skew) gets a new receive time, which the
# unique index (website_id, id, ts) alone would not catch. The NOT EXISTS probe reads
# that index's prefix; DISTINCT ON drops copies inside one batch (the earliest is kept).
# Two copies committed by concurrent transactions can still both land: that index must
# hold ts for TimescaleDB, so it cannot be unique on (website_id, id) alone.
# `newer` is true when the stored session already starts earlier than this batch's part.
MERGE_SQL = f"""
WITH ins AS (
    INSERT INTO events
    SELECT DISTINCT ON (website_id, id) * FROM ingest_events i
    WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.website_id = i.website_id AND e.id = i.id)
    ORDER BY website_id, id, ts
    ON CONFLICT DO NOTHING
    RETURNING website_id, session_id, visitor_id, ts, id, event_type, page, {", ".join(_FIRST)}
), s AS (
    SELECT website_id, session_id,
        (array_agg(visitor_id ORDER BY ts, id))[1] AS visitor_id,
        min(ts) AS started_at,
        (array_agg(id ORDER BY ts, id))[1] AS first_id,
        max(ts) AS last_seen,
        min(ts) FILTER (WHERE event_type = 'pageview') AS entry_ts,
        (array_agg(page ORDER BY ts, id) FILTER (WHERE event_type = 'pageview'))[1] AS entry_page,
        (array_agg(id ORDER BY ts, id) FILTER (WHERE event_type = 'pageview'))[1] AS entry_id,
        max(ts) FILTER (WHERE event_type = 'pageview') AS exit_ts,
        (array_agg(page ORDER BY ts DESC, id DESC)
            FILTER (WHERE event_type = 'pageview'))[1] AS exit_page,
        (array_agg(id ORDER BY ts DESC, id DESC)
            FILTER (WHERE event_type = 'pageview'))[1] AS exit_id,
        count(*) FILTER (WHERE event_type = 'pageview') AS pageviews,
        count(*) FILTER (WHERE event_type <> 'pageview') AS events,
        min(visitor_id) <> max(visitor_id) AS mixed_visitors,
        {_FIRST_AGG}
    FROM ins WHERE event_type NOT IN {_NOT_COUNTED}
    GROUP BY website_id, session_id
), up AS (
    INSERT INTO sessions AS t (website_id, session_id, visitor_id, started_at, first_id,
        last_seen, entry_ts, entry_page, entry_id, exit_ts, exit_page, exit_id, pageviews, events,
        mixed_visitors, {", ".join(_FIRST)})
    SELECT website_id, session_id, visitor_id, started_at, first_id, last_seen, entry_ts,
        entry_page, entry_id, exit_ts, exit_page, exit_id, pageviews, events, mixed_visitors,
        {", ".join(_FIRST)}
    FROM s
    ON CONFLICT (website_id, session_id) DO UPDATE SET
        started_at = LEAST(t.started_at, EXCLUDED.started_at),
        first_id = CASE WHEN (t.started_at, t.first_id) <= (EXCLUDED.started_at, EXCLUDED.first_id)
                        THEN t.first_id ELSE EXCLUDED.first_id END,
        last_seen = GREATEST(t.last_seen, EXCLUDED.last_seen),
        {_ENTRY_SET},
        {_EXIT_SET},
        pageviews = t.pageviews + EXCLUDED.pageviews,
        events = t.events + EXCLUDED.events,
        mixed_visitors = t.mixed_visitors OR EXCLUDED.mixed_visitors
                         OR t.visitor_id <> EXCLUDED.visitor_id,
        {_FIRST_SET.replace("newer", "(t.started_at, t.first_id) <= (EXCLUDED.started_at, EXCLUDED.first_id)")}
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins) AS inserted, (SELECT count(*) FROM up) AS sessions,
       (SELECT coalesce(array_agg(DISTINCT website_id), '{{}}') FROM ins) AS websites
"""  # nosec B608
# (bandit B608: MERGE_SQL is built once at import from this module's constant column names.)


@dataclass(frozen=True)
class MergeResult:
    """What one ``write_rows`` transaction did: ``inserted`` event rows (resent ids are
    not counted), ``sessions`` upserted and the ``websites`` that got new rows."""

    inserted: int
    sessions: int
    websites: list[str]


async def write_rows(conn: asyncpg.Connection, rows: Sequence[EventRow]) -> MergeResult:
    """COPY ``rows`` into the staging table, insert the new ones into ``events`` and
    upsert their sessions. The caller owns the transaction (``conn.transaction()``)."""
    await conn.execute(CREATE_STAGING)
    await conn.copy_records_to_table("ingest_events", records=rows, columns=EVENT_COLUMNS)
    rec = await conn.fetchrow(MERGE_SQL)
    assert rec is not None
    return MergeResult(int(rec["inserted"]), int(rec["sessions"]), list(rec["websites"]))


class WriterClosed(DatabaseUnavailable):
    """The writer is shutting down and takes no more rows."""


@dataclass
class WriteResult:
    """``stored``: rows of this request now in the database (resent ids included);
    ``inserted_total``: rows newly inserted by the whole group transaction."""

    stored: int
    inserted_total: int


@dataclass
class _Pending:
    rows: Sequence[EventRow]
    future: asyncio.Future[WriteResult]
    enqueued: float = field(default_factory=time.monotonic)


CommitHook = Callable[[list[str], int], Awaitable[None] | None]


class RowWriter(Protocol):
    """What the ingest pipeline writes through: ``BatchWriter`` (direct group commit)
    or ``db.ingest_queue.QueueWriter`` (Redis Streams, committed by ``footfall writer``)."""

    commit_hooks: list[CommitHook]
    observers: list[Callable[[int, float], None]]

    @property
    def queue_depth(self) -> int: ...

    async def write(self, rows: Sequence[EventRow]) -> WriteResult: ...

    async def describe(self) -> dict[str, Any]: ...

    async def close(self, drain_seconds: float = 30.0) -> None: ...


class BatchWriter:
    """Group-commit writer. ``batch_size`` in rows, ``batch_timeout`` in seconds."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        batch_size: int,
        batch_timeout: float,
        flushers: int = 2,
    ) -> None:
        self.pool = pool
        self.batch_size = batch_size
        self.batch_timeout = batch_timeout
        self.flushers = flushers
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._in_flight = 0
        self.commit_hooks: list[CommitHook] = []
        # Called after each commit with (rows in the group, commit seconds): metrics.
        self.observers: list[Callable[[int, float], None]] = []
        self.batches_committed = 0
        self.rows_committed = 0
        self.last_batch_rows = 0
        self.last_commit_seconds = 0.0

    @property
    def queue_depth(self) -> int:
        """Rows waiting to be written (not yet in a transaction)."""
        return self._queued_rows

    async def describe(self) -> dict[str, Any]:
        """For ``/health``: the mode, rows waiting and what a 2xx means."""
        return {
            "mode": "direct",
            "queue_depth": self.queue_depth,
            "contract": "2xx only after the rows are committed (group commit)",
        }

    def start(self) -> None:
        for i in range(self.flushers):
            self._tasks.append(asyncio.create_task(self._flush_loop(), name=f"writer-{i}"))

    async def write(self, rows: Sequence[EventRow]) -> WriteResult:
        """Store ``rows`` and return after they are committed (or raise DatabaseError)."""
        if self._closing:
            raise WriterClosed("the writer is shutting down")
        if not rows:
            return WriteResult(0, 0)
        fut: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(rows, fut))
        self._queued_rows += len(rows)
        self._wakeup.set()
        return await asyncio.shield(fut)

    async def close(self, drain_seconds: float = 30.0) -> None:
        """Stop taking rows, write everything already queued, then stop the flushers."""
        self._closing = True
        deadline = time.monotonic() + drain_seconds
        while (self._queue or self._in_flight) and time.monotonic() < deadline:
            self._wakeup.set()
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        while self._queue:
            p = self._queue.popleft()
            if not p.future.done():
                p.future.set_exception(WriterClosed("the writer stopped before this write"))

    def _take_group(self) -> list[_Pending]:
        group: list[_Pending] = []
        rows = 0
        while self._queue and (not group or rows + len(self._queue[0].rows) <= self.batch_size):
            p = self._queue.popleft()
            group.append(p)
            rows += len(p.rows)
        self._queued_rows -= rows
        return group

    async def _flush_loop(self) -> None:
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self.batch_timeout > 0 and self._queued_rows < self.batch_size and not self._closing:
                wait = self._queue[0].enqueued + self.batch_timeout - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            group = self._take_group()
            if not group:
                continue
            self._in_flight += 1
            try:
                await self._commit_group(group)
            finally:
                self._in_flight -= 1

    async def _commit_group(self, group: list[_Pending]) -> None:
        try:
            results = await self._write_rows([p.rows for p in group])
        except DatabaseUnavailable as exc:
            for p in group:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        except Exception as exc:
            if len(group) == 1:
                if not group[0].future.done():
                    group[0].future.set_exception(exc)
                return
            log.warning("group of %d writes failed (%s); retrying each alone", len(group), exc)
            for p in group:
                await self._commit_group([p])
            return
        for p, res in zip(group, results, strict=True):
            if not p.future.done():
                p.future.set_result(res)

    async def _write_rows(self, parts: list[Sequence[EventRow]]) -> list[WriteResult]:
        inserted = await self.commit([r for part in parts for r in part])
        # Duplicates (a resent event id) are already stored, so every row of every
        # request in the group is stored once this transaction has committed.
        return [WriteResult(stored=len(p), inserted_total=inserted) for p in parts]

    async def commit(self, rows: Sequence[EventRow]) -> int:
        """Write ``rows`` in one transaction now (no grouping), then tell the observers
        and commit hooks; return the rows newly inserted. Raises ``DatabaseError``
        (``DatabaseUnavailable`` when the database cannot be reached)."""
        started = time.perf_counter()
        try:
            async with self.pool.acquire(timeout=5.0) as conn, conn.transaction():
                res = await write_rows(conn, rows)
        except DatabaseError:
            raise
        except Exception as exc:
            mapped = translate(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        self.last_commit_seconds = time.perf_counter() - started
        self.batches_committed += 1
        self.rows_committed += res.inserted
        self.last_batch_rows = len(rows)
        for observe in self.observers:
            observe(len(rows), self.last_commit_seconds)
        await self._run_hooks(res.websites, res.inserted)
        return res.inserted

    async def _run_hooks(self, websites: list[str], inserted: int) -> None:
        for hook in self.commit_hooks:
            try:
                res = hook(websites, inserted)
                if res is not None:
                    await res
            except Exception:  # a hook must never undo an acknowledged commit
                log.exception("commit hook failed")
