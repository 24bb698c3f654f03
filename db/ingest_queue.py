"""Queue-mode ingest, API side: rows go to Redis Streams, ``footfall writer`` commits them.

With ``INGEST_QUEUE=redis`` the API validates and enriches as always, then appends a
request's rows to one of ``streams`` Redis Streams (``<prefix>:<n>``, chosen by a
CRC-32 of the website id, so one website's rows stay in order on one stream) and
answers once ``XADD`` has returned. Writers (``db.ingest_consumer``) read the streams
through the consumer group ``writers``, commit with the same transaction as the group
commit (``db.writer.write_rows``) and only then ``XACK`` + ``XDEL`` the entries, so a
stream's length is its backlog.

Durability contract: an acknowledged event is in Redis. It survives a Redis crash only
when Redis runs with ``appendonly yes`` and ``appendfsync always`` (``status()``
reports what the server says). Back-pressure: when a stream holds ``max_pending``
entries or more, ``write`` raises ``QueueFull`` (HTTP 503 + ``Retry-After``) instead of
letting Redis grow without bound; lengths are cached for ``LENGTH_TTL`` seconds.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from db.errors import DatabaseUnavailable
from db.writer import CommitHook, EventRow, WriterClosed, WriteResult

DEFAULT_PREFIX = "footfall:ingest"
GROUP = "writers"
FIELD = b"r"  # the one field of an entry: orjson list of rows (EVENT_COLUMNS order)
LENGTH_TTL = 0.1  # seconds a stream-length reading is trusted for back-pressure
RETRY_AFTER = 1  # seconds a client is asked to wait when the queue is full

_TS, _ID, _PROPS, _RECEIVED = 1, 2, 21, 22  # positions in EVENT_COLUMNS


class QueueUnavailable(DatabaseUnavailable):
    """Redis could not take the rows (nothing was acknowledged)."""


class QueueFull(DatabaseUnavailable):
    """A stream is over ``INGEST_MAX_PENDING`` entries; retry after ``retry_after`` s."""

    def __init__(self, message: str, retry_after: int = RETRY_AFTER) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def stream_keys(prefix: str, streams: int) -> list[str]:
    """The stream names, ``<prefix>:0`` … ``<prefix>:<streams − 1>``."""
    return [f"{prefix}:{i}" for i in range(streams)]


def dead_letter_key(prefix: str) -> str:
    """Where a writer moves an entry that fails alone for a reason other than an outage."""
    return f"{prefix}:dead"


def shard_of(website_id: str, streams: int) -> int:
    return zlib.crc32(website_id.encode()) % streams


def encode_rows(rows: Sequence[EventRow]) -> bytes:
    """Rows as compact JSON: timestamps ISO 8601 with offset, ids as UUID strings."""
    return orjson.dumps(rows)


def decode_rows(data: bytes) -> list[EventRow]:
    """Inverse of ``encode_rows``: datetimes and UUIDs restored for COPY."""
    out: list[EventRow] = []
    for raw in orjson.loads(data):
        raw[_TS] = datetime.fromisoformat(raw[_TS])
        raw[_ID] = uuid.UUID(raw[_ID])
        raw[_RECEIVED] = datetime.fromisoformat(raw[_RECEIVED])
        out.append(tuple(raw))
    return out


def connect(url: str, *, socket_timeout: float | None = 5.0, max_connections: int = 64) -> Any:
    """A Redis client whose pool waits (≤ 2 s) for a connection instead of raising."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=2.0, socket_connect_timeout=2.0,
        socket_timeout=socket_timeout,
    )  # fmt: skip
    return aioredis.Redis(connection_pool=pool)


async def ensure_groups(client: Any, keys: Sequence[str]) -> None:
    """Create the consumer group on every stream (and the stream), from the first entry."""
    for key in keys:
        try:
            await client.xgroup_create(key, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


async def durability(client: Any) -> dict[str, Any]:
    """What the Redis server says about AOF; ``durable`` only with fsync on every write."""
    try:
        aof = await client.config_get("appendonly")
        fsync = await client.config_get("appendfsync")
    except ResponseError:  # CONFIG disabled (managed Redis): cannot tell
        return {"appendonly": "unknown", "appendfsync": "unknown", "durable": None}
    appendonly = _text(aof.get(b"appendonly", aof.get("appendonly", "")))
    appendfsync = _text(fsync.get(b"appendfsync", fsync.get("appendfsync", "")))
    return {
        "appendonly": appendonly,
        "appendfsync": appendfsync,
        "durable": appendonly == "yes" and appendfsync == "always",
    }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class QueueWriter:
    """The API's writer in queue mode: ``write`` returns once Redis has the rows."""

    def __init__(
        self,
        client: Any,
        *,
        streams: int,
        max_pending: int,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.client = client
        self.keys = stream_keys(prefix, streams)
        self.max_pending = max_pending
        self.commit_hooks: list[CommitHook] = []  # commits happen in the writers
        self.observers: list[Callable[[int, float], None]] = []
        self._lengths = [0] * streams
        self._lengths_until = 0.0
        self._lock = asyncio.Lock()
        self._closing = False

    @property
    def queue_depth(self) -> int:
        """Entries waiting in (or being written from) the streams, as last measured."""
        return sum(self._lengths)

    async def write(self, rows: Sequence[EventRow]) -> WriteResult:
        """Append ``rows`` (one ``XADD`` per stream touched, pipelined). Raises
        ``QueueFull`` over the limit and ``QueueUnavailable`` when Redis fails."""
        if self._closing:
            raise WriterClosed("the writer is shutting down")
        if not rows:
            return WriteResult(0, 0)
        parts: dict[int, list[EventRow]] = {}
        for row in rows:
            parts.setdefault(shard_of(row[0], len(self.keys)), []).append(row)
        await self._check_room(parts)
        try:
            async with self.client.pipeline(transaction=len(parts) > 1) as pipe:
                for shard, part in parts.items():
                    pipe.xadd(self.keys[shard], {FIELD: encode_rows(part)})
                await pipe.execute()
        except RedisError as exc:
            raise QueueUnavailable(f"ingest queue unavailable ({type(exc).__name__})") from exc
        for shard in parts:
            self._lengths[shard] += 1
        return WriteResult(stored=len(rows), inserted_total=0)

    async def _check_room(self, shards: Iterable[int]) -> None:
        if time.monotonic() >= self._lengths_until:
            async with self._lock:
                if time.monotonic() >= self._lengths_until:
                    await self.refresh_lengths()
        for shard in shards:
            if self._lengths[shard] >= self.max_pending:
                raise QueueFull(
                    f"ingest queue full ({self._lengths[shard]:,} entries waiting in "
                    f"{self.keys[shard]}), retry later"
                )

    async def refresh_lengths(self) -> list[int]:
        """``XLEN`` of every stream (one round trip); cached for ``LENGTH_TTL`` s."""
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for key in self.keys:
                    pipe.xlen(key)
                lengths = await pipe.execute()
        except RedisError as exc:
            raise QueueUnavailable(f"ingest queue unavailable ({type(exc).__name__})") from exc
        self._lengths = [int(n) for n in lengths]
        self._lengths_until = time.monotonic() + LENGTH_TTL
        return list(self._lengths)

    async def describe(self) -> dict[str, Any]:
        """For ``/health``: stream lengths, the limit and the durability contract."""
        lengths = await self.refresh_lengths()
        try:
            aof = await durability(self.client)
        except RedisError as exc:
            raise QueueUnavailable(f"ingest queue unavailable ({type(exc).__name__})") from exc
        return {
            "mode": "redis",
            "streams": dict(zip(self.keys, lengths, strict=True)),
            "max_pending": self.max_pending,
            "redis": aof,
            "contract": (
                "2xx once XADD returned: the events are in Redis and a footfall writer "
                "commits them (XACK after COMMIT; replays are idempotent by event id). "
                "Survives a Redis crash only with appendonly yes + appendfsync always."
            ),
        }

    async def close(self, drain_seconds: float = 30.0) -> None:
        """Stop taking rows (entries already in Redis are the writers' business)."""
        self._closing = True
        await self.client.aclose()
        await self.client.connection_pool.disconnect()
