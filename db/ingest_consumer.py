"""Queue-mode ingest, writer side: ``footfall writer`` consumes the Redis Streams.

Each writer process is one consumer of the group ``writers`` on every stream:

1. ``XREADGROUP`` new entries (blocking ≤ ``block`` seconds when idle), topping the
   batch up once after ``batch_timeout`` seconds when it holds fewer than
   ``batch_size`` rows;
2. commit them with ``BatchWriter.commit`` — the group commit's own transaction
   (``db.writer.write_rows``), metrics observers and commit hooks (cache invalidation,
   realtime notices) — at most ``batch_size`` rows per transaction;
3. only then ``XACK`` + ``XDEL`` those entries (one MULTI per stream).

A writer that dies between 1 and 3 leaves its entries pending in the group; every
writer runs ``XAUTOCLAIM`` for entries idle longer than ``claim_idle`` seconds and
commits them again. Event ids make that replay idempotent (``INSERT … ON CONFLICT DO
NOTHING``; sessions count only inserted rows), so nothing is stored or counted twice.
With the database unreachable (or any unexpected error) the entries stay pending and
are retried; an entry that the database refuses as data (SQLSTATE classes 22 and 23,
e.g. a NOT NULL violation) even when written alone, or that cannot be decoded, is moved
to the dead-letter stream ``<prefix>:dead`` with the error, so that it cannot block the
rest. Nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from redis.exceptions import RedisError

from db.errors import ConflictError, DatabaseUnavailable, QueryTimeout
from db.ingest_queue import (
    DEFAULT_PREFIX,
    FIELD,
    GROUP,
    dead_letter_key,
    decode_rows,
    ensure_groups,
    stream_keys,
)
from db.writer import BatchWriter, EventRow

log = logging.getLogger("footfall.ingest")
# Failures that are about the rows, not the moment: retrying cannot help.
POISON: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.DataError,
    asyncpg.exceptions.IntegrityConstraintViolationError,
    ConflictError,
    ValueError,
    TypeError,
)
SPLIT: tuple[type[BaseException], ...] = (*POISON, QueryTimeout)  # retried entry by entry


@dataclass
class Entry:
    """One stream entry: its stream, id and decoded rows (``None``: undecodable)."""

    stream: str
    id: bytes
    rows: list[EventRow] | None
    error: str | None = None


def _entry(stream: str, entry_id: bytes, fields: dict[bytes, bytes] | None) -> Entry:
    if not fields:  # deleted after delivery: nothing to write, just acknowledge
        return Entry(stream, entry_id, [])
    try:
        return Entry(stream, entry_id, decode_rows(fields[FIELD]))
    except Exception as exc:  # a malformed entry must not stop the writer
        return Entry(stream, entry_id, None, f"undecodable: {exc!r}")


def _name(stream: Any) -> str:
    return stream.decode() if isinstance(stream, bytes) else str(stream)


class StreamConsumer:
    """One writer. ``batch_size`` in rows; ``batch_timeout``, ``claim_idle`` and
    ``block`` in seconds."""

    def __init__(
        self,
        client: Any,
        writer: BatchWriter,
        *,
        name: str,
        streams: int,
        batch_size: int,
        batch_timeout: float,
        claim_idle: float,
        block: float = 1.0,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.client = client
        self.writer = writer
        self.name = name
        self.keys = stream_keys(prefix, streams)
        self.dead_key = dead_letter_key(prefix)
        self.batch_size = batch_size
        self.batch_timeout = batch_timeout
        self.claim_idle = claim_idle
        self.block = block
        self._rows_per_entry = 10.0  # running estimate, sizes XREADGROUP's COUNT
        self._retry: list[Entry] = []  # read but not committed (the database was down)
        self.entries_done = 0
        self.rows_done = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is committed and
        acknowledged first. Redis or database outages are waited out."""
        started = False
        next_claim = 0.0
        while not stop.is_set():
            try:
                if not started:  # a restarted writer of the same name: its own pending first
                    await ensure_groups(self.client, self.keys)
                    self._retry = await self._read(own_pending=True)
                    started = True
                if time.monotonic() >= next_claim:
                    next_claim = time.monotonic() + max(0.05, self.claim_idle / 2)
                    self._retry += await self._claim_stale()
                entries, self._retry = self._retry, []
                if not entries:
                    entries = await self._read(block=self.block)
                    if not entries:
                        continue
                    if self.batch_timeout > 0 and self._rows(entries) < self.batch_size:
                        await asyncio.sleep(self.batch_timeout)
                        entries += await self._read()
                await self._process(entries)
            except DatabaseUnavailable as exc:
                log.warning("database unavailable (%s); retrying in 1 s", exc)
                await _sleep_unless(stop, 1.0)
            except RedisError as exc:
                log.warning("redis error (%s); retrying in 1 s", exc)
                await _sleep_unless(stop, 1.0)
            except Exception:
                log.exception("writing queued rows failed; retrying in 1 s")
                await _sleep_unless(stop, 1.0)

    @staticmethod
    def _rows(entries: Sequence[Entry]) -> int:
        return sum(len(e.rows or ()) for e in entries)

    def _count(self) -> int:
        """Entries per stream per read: about ``batch_size`` rows."""
        return max(1, min(self.batch_size, math.ceil(self.batch_size / self._rows_per_entry)))

    async def _read(self, *, block: float | None = None, own_pending: bool = False) -> list[Entry]:
        start = "0" if own_pending else ">"
        reply = await self.client.xreadgroup(
            GROUP, self.name, {k: start for k in self.keys},
            count=self._count() if not own_pending else None,
            block=None if block is None else int(block * 1000),
        )  # fmt: skip
        entries = [_entry(_name(s), i, f) for s, items in reply or [] for i, f in items]
        if entries:
            rows = self._rows(entries) / len(entries)
            self._rows_per_entry = max(1.0, 0.8 * self._rows_per_entry + 0.2 * rows)
        return entries

    async def _claim_stale(self) -> list[Entry]:
        """Take over entries another writer read but has not acknowledged for
        ``claim_idle`` seconds (it died or hangs)."""
        claimed: list[Entry] = []
        for key in self.keys:
            start: Any = "0-0"
            while True:
                reply = await self.client.xautoclaim(
                    key, GROUP, self.name, int(self.claim_idle * 1000), start_id=start,
                    count=self._count(),
                )  # fmt: skip
                start, items = reply[0], reply[1]
                claimed += [_entry(key, i, f) for i, f in items]
                if start in (b"0-0", "0-0") or len(claimed) >= 10 * self._count():
                    break
        if claimed:
            log.warning("%s claimed %d stale entries from other writers", self.name, len(claimed))
        return claimed

    async def _process(self, entries: list[Entry]) -> None:
        """Commit in chunks of ≤ ``batch_size`` rows; acknowledge each after its commit.
        On a failure the unacknowledged rest is kept for the next attempt."""
        bad = [e for e in entries if e.rows is None]
        if bad:
            await self._dead_letter(bad)
        chunk: list[Entry] = []
        rows = 0
        good = [e for e in entries if e.rows is not None]
        for i, entry in enumerate(good):
            n = len(entry.rows or ())
            if chunk and rows + n > self.batch_size:
                await self._commit_or_keep(chunk, good[i:])
                chunk, rows = [], 0
            chunk.append(entry)
            rows += n
        if chunk:
            await self._commit_or_keep(chunk, [])

    async def _commit_or_keep(self, chunk: list[Entry], rest: list[Entry]) -> None:
        try:
            await self._commit(chunk)
        except Exception:
            self._retry = chunk + rest
            raise

    async def _commit(self, chunk: list[Entry]) -> None:
        rows = [r for e in chunk for r in e.rows or ()]
        try:
            if rows:
                await self.writer.commit(rows)
        except SPLIT as exc:
            if len(chunk) == 1 and isinstance(exc, QueryTimeout):
                raise  # too slow right now, not wrong: retried later
            if len(chunk) == 1:
                chunk[0].error = f"{type(exc).__name__}: {exc}"
                await self._dead_letter(chunk)
                return
            log.warning("batch of %d entries failed (%s); committing each alone", len(chunk), exc)
            for entry in chunk:
                await self._commit([entry])
            return
        await self._ack(chunk)
        self.entries_done += len(chunk)
        self.rows_done += len(rows)

    async def _ack(self, entries: Sequence[Entry]) -> None:
        """``XACK`` + ``XDEL`` (atomically per stream): acknowledged entries leave the
        stream, so its length is the backlog that back-pressure watches."""
        by_stream: dict[str, list[bytes]] = {}
        for e in entries:
            by_stream.setdefault(e.stream, []).append(e.id)
        for stream, ids in by_stream.items():
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.xack(stream, GROUP, *ids)
                pipe.xdel(stream, *ids)
                await pipe.execute()

    async def _dead_letter(self, entries: Sequence[Entry]) -> None:
        for e in entries:
            log.error("entry %s of %s moved to %s: %s", e.id, e.stream, self.dead_key, e.error)
            raw = await self.client.xrange(e.stream, e.id, e.id)
            payload = raw[0][1].get(FIELD, b"") if raw else b""
            await self.client.xadd(self.dead_key, {
                b"stream": e.stream, b"id": e.id, b"error": e.error or "", FIELD: payload,
            })  # fmt: skip
        await self._ack(entries)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
