"""Queue mode: each visitor's latest session, kept in Redis next to the database's.

metrics.md: an event without ``session_id`` continues its visitor's latest session when
that session's last event is less than 30 minutes (event time) away, else starts a new
one. ``resolvers.tracking`` reads the latest session from the ``sessions`` table, which
in queue mode lags behind what was accepted (events wait in the ingest streams for a
writer, and for the whole of a database outage). So in queue mode every accepted
request also records, per visitor, the session of its latest event and that event's
time: ``<namespace>:last:<website id>:<digest of visitor>`` = ``"<µs since epoch>
<session id>"``, replaced only by a later event (one Lua script per request, atomic
across processes) and kept ``STATE_TTL`` seconds after the visitor's last request.

``latest_sessions`` then answers, per visitor, the later of the database's latest
session and this record; while PostgreSQL is unreachable (``resolvers.ingest_fallback``)
the record alone. Visitors with no record (none for ``STATE_TTL``) start a new session
during an outage, which is right when their last event is more than 30 minutes old —
i.e. unless a client sends timestamps from long ago. Parallel requests of a visitor
without a session still meet in ``resolvers.session_claims``. Without a record and
without the database (Redis failed too) the look-up raises ``DatabaseUnavailable``.
Direct mode reads the database only, as before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from db.errors import DatabaseUnavailable
from db.queries import identity as identity_sql
from db.queries.dimensions import IGNORED_EVENT_TYPES
from resolvers.event_input import CleanEvent
from resolvers.ingest_fallback import EPOCH, MICROSECOND, IngestFallback, fallback_of, micros
from resolvers.runtime import Runtime

STATE_TTL = 3600  # seconds a visitor's record outlives its last request (≥ the 30 min gap)
SCRIPT_BATCH = 500  # visitors per script call / MGET
Latest = dict[str, tuple[str, datetime]]  # visitor id → (session id, last event time)

# KEYS: record keys; ARGV: ttl ms, then per key: event µs, session id. A record is
# replaced by a later (or equally late) event; every call renews its ttl.
_SCRIPT = """
local ttl = ARGV[1]
for i = 1, #KEYS do
  local us = ARGV[2 * i]
  local cur = redis.call('GET', KEYS[i])
  local cur_us = cur and tonumber(string.match(cur, '^(%-?%d+) '))
  if not cur_us or tonumber(us) >= cur_us then
    redis.call('SET', KEYS[i], us .. ' ' .. ARGV[2 * i + 1], 'PX', ttl)
  else
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
return #KEYS
"""


def _key(namespace: str, website_id: str, visitor_id: str) -> str:
    """``<namespace>:last:<website id>:<digest of the visitor id>`` (website ids are
    1–64 of ``A-Za-z0-9_.:-``: no glob characters, so a website's records can be
    matched by prefix)."""
    digest = hashlib.blake2b(visitor_id.encode(), digest_size=16)
    return f"{namespace}:last:{website_id}:{digest.hexdigest()}"


def _parse(value: bytes | str) -> tuple[str, datetime]:
    text = value.decode() if isinstance(value, bytes) else value
    us, _, session_id = text.partition(" ")
    return session_id, EPOCH + int(us) * MICROSECOND


async def read_records(fb: IngestFallback, website_id: str, visitor_ids: Sequence[str]) -> Latest:
    """The Redis records of ``visitor_ids``; raises the Redis error."""
    found: Latest = {}
    for start in range(0, len(visitor_ids), SCRIPT_BATCH):
        part = visitor_ids[start : start + SCRIPT_BATCH]
        values = await fb.redis.mget([_key(fb.namespace, website_id, v) for v in part])
        found.update({v: _parse(val) for v, val in zip(part, values, strict=True) if val})
    return found


async def latest_sessions(rt: Runtime, website_id: str, visitor_ids: list[str]) -> Latest:
    """Each visitor's latest session ``(session id, last event time)``; see the module
    docstring for where it comes from in each mode."""
    if not rt.queued:
        return await identity_sql.latest_sessions(rt.pools.write, website_id, visitor_ids)
    fb = fallback_of(rt)
    stored: Latest | None = None
    if not fb.database_down:
        try:
            stored = await identity_sql.latest_sessions(rt.pools.write, website_id, visitor_ids)
        except DatabaseUnavailable as exc:
            fb.database_failed(exc)
        else:
            fb.database_answered()
    kept: Latest | None = None
    if fb.redis is not None:
        try:
            kept = await read_records(fb, website_id, visitor_ids)
            fb.redis_answered()
        except Exception as exc:  # redis errors, OSError, timeouts (not cancellation)
            fb.redis_failed("session records", exc)
    if stored is None:
        if kept is None:
            raise DatabaseUnavailable("database and session records unavailable")
        return kept
    for visitor_id, record in (kept or {}).items():
        if visitor_id not in stored or record[1] > stored[visitor_id][1]:
            stored[visitor_id] = record
    return stored


def _latest_per_visitor(events: Iterable[CleanEvent]) -> Latest:
    """Each visitor's latest counted event: ``session_start``/``session_end`` markers do
    not keep a session alive, as in the ``sessions`` table (``db/writer.py``)."""
    out: Latest = {}
    for ev in events:
        if ev.event_type in IGNORED_EVENT_TYPES:
            continue
        assert ev.visitor_id is not None and ev.session_id is not None
        seen = out.get(ev.visitor_id)
        if seen is None or ev.ts >= seen[1]:
            out[ev.visitor_id] = (ev.session_id, ev.ts)
    return out


async def remember_sessions(rt: Runtime, website_id: str, events: Iterable[CleanEvent]) -> None:
    """Queue mode, after the events were accepted: record each visitor's latest session
    (events with and without a client ``session_id`` alike, as the ``sessions`` table
    would show them). Never raises for a Redis failure (logged once)."""
    if not rt.queued:
        return
    fb = fallback_of(rt)
    if fb.redis is None:
        return
    latest = sorted(_latest_per_visitor(events).items())
    script = fb.script(_SCRIPT)
    try:
        for start in range(0, len(latest), SCRIPT_BATCH):
            part = latest[start : start + SCRIPT_BATCH]
            args: list[Any] = [STATE_TTL * 1000]
            for _, (session_id, ts) in part:
                args += [micros(ts), session_id]
            keys = [_key(fb.namespace, website_id, v) for v, _ in part]
            await script(keys=keys, args=args)
        fb.redis_answered()
    except Exception as exc:  # redis errors, OSError, timeouts (not cancellation)
        fb.redis_failed("session records", exc)


async def forget_websites(rt: Runtime, website_ids: Iterable[str]) -> None:
    """After a website's data (or an account's) was deleted or anonymised: drop every
    record of those websites (a scan by key prefix). Never raises."""
    fb = fallback_of(rt)
    if not rt.queued or fb.redis is None:
        return
    try:
        for website_id in website_ids:
            batch: list[Any] = []
            async for key in fb.redis.scan_iter(match=f"{fb.namespace}:last:{website_id}:*",
                                                count=1000):  # fmt: skip
                batch.append(key)
                if len(batch) >= SCRIPT_BATCH:
                    await fb.redis.delete(*batch)
                    batch = []
            if batch:
                await fb.redis.delete(*batch)
    except Exception as exc:  # redis errors, OSError, timeouts (not cancellation)
        fb.redis_failed("session records", exc)


async def forget_visitor(rt: Runtime, website_id: str, visitor_id: str) -> None:
    """After a visitor's data was erased: drop its record, so that its next event
    starts a new session instead of continuing an erased one. Never raises."""
    fb = fallback_of(rt)
    if not rt.queued or fb.redis is None:
        return
    try:
        await fb.redis.delete(_key(fb.namespace, website_id, visitor_id))
    except Exception as exc:  # redis errors, OSError, timeouts (not cancellation)
        fb.redis_failed("session records", exc)
