"""Queue-mode tracking while PostgreSQL is unreachable: which website rows to trust.

In queue mode (``INGEST_QUEUE=redis``) an accepted event only has to reach Redis; the
database is needed for the website look-up (``resolvers.runtime.WebsiteCache``) and the
session look-up (``resolvers.session_state``). When a look-up fails with
``DatabaseUnavailable`` the ingest path *trips* for ``OUTAGE_RETRY`` seconds: it does
not ask PostgreSQL again before then (an outage costs one failed query per second, not
one per request, however slow the failure) and answers from the last known state:

- **websites** (stale-if-error): the row this process read last, however old; else the
  copy in Redis (``<namespace>:site:<id>``, written whenever a process reads the row
  from the database for tracking — at most once per ``WebsiteCache.ttl`` per process
  and website — and when a website is created or changed; kept ``COPY_TTL`` seconds
  after the last write; a deleted website leaves a tombstone, and a row read before a
  change never replaces a newer copy or a tombstone: ``save_copy``). A
  website neither this process nor Redis knows cannot be told apart from one that does
  not exist: ``DatabaseUnavailable`` (503).
- **sessions**: ``resolvers.session_state``.

Direct mode (``INGEST_QUEUE=direct``) never uses any of this: there a 2xx means
committed, so tracking answers 503 as soon as the database is unreachable.
Redis failures here never fail a request while the database answers (the copy is a
best effort; logged once per outage).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from db.errors import DatabaseUnavailable
from db.queries.websites import WebsiteRow
from resolvers.protection import protection_of
from resolvers.runtime import Runtime, valid_website_id

log = logging.getLogger("footfall.ingest")

EXTRAS_KEY = "ingest_fallback"
OUTAGE_RETRY = 1.0  # seconds the ingest path skips PostgreSQL after it was unreachable
COPY_TTL = 7 * 24 * 3600  # seconds a website's Redis copy outlives its last refresh
_TOMBSTONE = b"-"  # the copy of a deleted website
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
# KEYS[1]: the copy; ARGV: mode ('changed' | 'read'), version (updated_at, µs), value, ttl.
# Copies are "<version> <json>"; a read's row never replaces a newer copy or a tombstone.
_SAVE_COPY = """
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == 'read' and cur then
  if cur == '-' then return 0 end
  local v = tonumber(string.match(cur, '^(%d+) '))
  if v and v > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
return 1
"""


def micros(ts: datetime) -> int:
    """Whole microseconds since the epoch (exact; < 2^53 until year 2255): how the Redis
    copies and session records store times."""
    return (ts - EPOCH) // MICROSECOND


class IngestFallback:
    """The outage switch and the Redis copies of website rows (``redis`` None: no
    copies, in-process rows only)."""

    def __init__(self, redis: Any = None, namespace: str = "ff") -> None:
        self.redis = redis
        self.namespace = namespace
        self._down_until = 0.0
        self._outage = False  # logged as begun, not yet as over
        self._redis_failed = False
        self._scripts: dict[str, Any] = {}

    def script(self, source: str) -> Any:
        """``source`` registered on the Redis client (EVALSHA, loaded on first use)."""
        if source not in self._scripts:
            self._scripts[source] = self.redis.register_script(source)
        return self._scripts[source]

    @property
    def database_down(self) -> bool:
        """PostgreSQL failed less than ``OUTAGE_RETRY`` seconds ago: don't ask it."""
        return time.monotonic() < self._down_until

    def database_failed(self, exc: DatabaseUnavailable) -> None:
        """Record a failed look-up (logged once per outage)."""
        self._down_until = time.monotonic() + OUTAGE_RETRY
        if not self._outage:
            self._outage = True
            log.warning("ingest: %s; queue mode tracks with the last known websites and "
                        "sessions", exc)  # fmt: skip

    def database_answered(self) -> None:
        """Record a look-up that worked (ends a logged outage)."""
        if self._outage:
            self._outage = False
            log.info("ingest: database answers again")

    def _key(self, website_id: str) -> str:
        return f"{self.namespace}:site:{website_id}"

    def redis_failed(self, what: str, exc: Exception) -> None:
        """Record a failed Redis call (logged once until one works again)."""
        if not self._redis_failed:
            self._redis_failed = True
            log.warning("ingest: Redis failed (%s: %s)", what, type(exc).__name__)

    def redis_answered(self) -> None:
        self._redis_failed = False

    async def save_copy(
        self, website_id: str, row: WebsiteRow | None, *, changed: bool = False
    ) -> None:
        """Store the Redis copy; never raises.

        ``changed``: the website was just created or changed (``row``) or deleted
        (None: a tombstone, so that no copy comes back for ``COPY_TTL``) — stored as
        given. Otherwise ``row`` was read for tracking and may already be stale: it is
        stored only over an older copy (``updated_at``) and never over a tombstone; a
        read that found nothing stores nothing (deletions leave their tombstone)."""
        if self.redis is None or (row is None and not changed):
            return
        value = _TOMBSTONE
        version = 0
        if row is not None:
            version = micros(row.updated_at)
            value = f"{version} ".encode() + orjson.dumps(row)
        try:
            await self.script(_SAVE_COPY)(
                keys=[self._key(website_id)],
                args=["changed" if changed else "read", version, value, COPY_TTL],
            )  # fmt: skip
            self.redis_answered()
        except Exception as exc:  # redis errors, OSError, timeouts (not cancellation)
            self.redis_failed("website copy", exc)

    async def load_copy(self, website_id: str) -> WebsiteRow | None:
        """The Redis copy, or None (none stored, a tombstone, or Redis failed)."""
        if self.redis is None:
            return None
        try:
            data = await self.redis.get(self._key(website_id))
        except Exception as exc:
            self.redis_failed("website copy", exc)
            return None
        if data is None or data == _TOMBSTONE:
            return None
        try:
            raw = orjson.loads(data.partition(b" ")[2])
            for name in ("created_at", "updated_at"):
                raw[name] = datetime.fromisoformat(raw[name])
            return WebsiteRow(**raw)
        except (ValueError, TypeError, KeyError) as exc:  # not a copy we wrote
            self.redis_failed("website copy", exc)
            return None


def fallback_of(rt: Runtime) -> IngestFallback:
    """The runtime's fallback, built on first use on the rate limiter's Redis client and
    deployment namespace (as ``resolvers.session_claims`` does)."""
    found = rt.extras.get(EXTRAS_KEY)
    if not isinstance(found, IngestFallback):
        limiter = protection_of(rt).limiter
        found = rt.extras[EXTRAS_KEY] = IngestFallback(limiter.redis, limiter.namespace)
    return found


async def website_for_ingest(rt: Runtime, website_id: str) -> WebsiteRow | None:
    """The website a tracking request names, or None when it does not exist.

    Direct mode: ``rt.websites.get`` (``DatabaseUnavailable`` propagates). Queue mode:
    the same, but while the database is unreachable the last known row (this process's,
    else Redis's copy); ``DatabaseUnavailable`` only for a website known to neither."""
    if not rt.queued or not valid_website_id(website_id):
        return await rt.websites.get(website_id)
    fb = fallback_of(rt)
    if not fb.database_down:
        fresh = rt.websites.is_fresh(website_id)
        try:
            row = await rt.websites.get(website_id)
        except DatabaseUnavailable as exc:
            fb.database_failed(exc)
        else:
            if not fresh:  # read from the database just now: refresh the shared copy
                fb.database_answered()
                await fb.save_copy(website_id, row)
            return row
    row = rt.websites.last_known(website_id) or await fb.load_copy(website_id)
    if row is None:
        raise DatabaseUnavailable(f"database unavailable and website {website_id!r} unknown")
    return row
