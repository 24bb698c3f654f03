"""Realtime activity (last 5 minutes, server time) and commit notifications.

``PubSub`` tells subscribers that new events of a website were committed. The writer's
commit hook calls ``publish``; with Redis the notice goes through the channel
``footfall:commits`` so that every worker's subscribers hear every worker's commits,
without Redis only this process's. Redis trouble never fails a commit: the listener
reconnects with back-off, and local subscribers are always told directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from db.errors import DatabaseUnavailable, QueryTimeout
from db.queries import stats_events as sql
from resolvers.definitions import MAX_TOP_PAGES, REALTIME_WINDOW_SECONDS
from resolvers.errors import ServiceUnavailable
from resolvers.runtime import Runtime
from resolvers.stats_types import BreakdownRow

log = logging.getLogger("footfall.realtime")
CHANNEL = "footfall:commits"


@dataclass
class RealtimeData:
    """Visitors and page views in ``[now − 5 min, now]`` and up to 100 top pages."""

    visitors: int = 0
    pageviews: int = 0
    top_pages: list[BreakdownRow] = field(default_factory=list)


REALTIME_CACHE_SECONDS = 1.0
_CACHE_KEY = "realtime_cache"


def _cache(rt: Runtime) -> dict[str, tuple[float, RealtimeData]]:
    cache: dict[str, tuple[float, RealtimeData]] = rt.extras.setdefault(_CACHE_KEY, {})
    return cache


def forget_realtime(rt: Runtime, website_ids: Iterable[str]) -> None:
    """Drop this process's cached realtime answers (called on commit)."""
    cache = _cache(rt)
    for w in website_ids:
        cache.pop(w, None)


async def load_realtime(
    rt: Runtime, website_ids: Sequence[str], *, fresh: bool = False
) -> list[RealtimeData]:
    """One statement for all websites; one answer per id, in order. Answers are kept
    in-process for ``REALTIME_CACHE_SECONDS`` (dropped on this process's commits for the
    website); ``fresh`` bypasses that (subscription pushes)."""
    cache = _cache(rt)
    clock = time.monotonic()
    unique = sorted(set(website_ids))
    if not fresh:
        hits = {w: hit[1] for w in unique if (hit := cache.get(w)) is not None and hit[0] > clock}
        if len(hits) == len(unique):
            return [hits[w] for w in website_ids]
    answers = await _query_realtime(rt, unique)
    if len(cache) > 10_000:
        cache.clear()
    for w, data in answers.items():
        cache[w] = (clock + REALTIME_CACHE_SECONDS, data)
    return [answers[w] for w in website_ids]


async def _query_realtime(rt: Runtime, unique: list[str]) -> dict[str, RealtimeData]:
    now = datetime.now(UTC)
    try:
        groups = await sql.realtime(rt.pools.read, unique,
                                    now - timedelta(seconds=REALTIME_WINDOW_SECONDS), now,
                                    MAX_TOP_PAGES)  # fmt: skip
    except (DatabaseUnavailable, QueryTimeout) as exc:
        raise ServiceUnavailable(str(exc)) from exc
    data = {w: RealtimeData() for w in unique}
    for g in groups:
        d = data[g.website_id]
        if g.page is None:
            d.visitors, d.pageviews = g.visitors, g.pageviews
    for g in groups:
        d = data[g.website_id]
        if g.page is not None:
            share = 100.0 * g.visitors / d.visitors if d.visitors else 0.0
            d.top_pages.append(BreakdownRow(g.page, g.visitors, share, pageviews=g.pageviews))
    return data


class Subscription:
    """Wakes up when the subscribed website has new committed events (coalesced)."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[None] = asyncio.Queue(maxsize=1)

    def notify(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)

    async def wait(self, seconds: float) -> bool:
        """True when notified within ``seconds``."""
        try:
            await asyncio.wait_for(self._queue.get(), seconds)
        except TimeoutError:
            return False
        return True


class PubSub:
    """Commit notifications by website; ``redis`` is a redis.asyncio client or None."""

    def __init__(self, redis: Any = None, channel: str = CHANNEL) -> None:
        self._redis = redis
        self._channel = channel
        self._origin = uuid.uuid4().hex
        self._subs: dict[str, set[Subscription]] = {}
        self._task: asyncio.Task[None] | None = None
        #: called with the website ids of every notice from another process
        self.remote_hooks: list[Callable[[list[str]], None]] = []

    def start(self) -> None:
        if self._redis is not None and self._task is None:
            self._task = asyncio.create_task(self._listen(), name="realtime-listener")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _deliver(self, website_ids: Iterable[str]) -> None:
        for website_id in website_ids:
            for sub in self._subs.get(website_id, ()):
                sub.notify()

    async def publish(self, website_ids: list[str]) -> None:
        """Tell every worker's subscribers that these websites have new events."""
        self._deliver(website_ids)
        if self._redis is None or not website_ids:
            return
        try:
            await self._redis.publish(self._channel, orjson.dumps({"o": self._origin,
                                                                   "w": website_ids}))  # fmt: skip
        except Exception as exc:
            log.warning("realtime publish failed: %s", exc)

    @contextlib.asynccontextmanager
    async def subscribe(self, website_id: str) -> AsyncIterator[Subscription]:
        sub = Subscription()
        self._subs.setdefault(website_id, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._subs.get(website_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[website_id]

    async def _listen(self) -> None:
        delay = 0.2
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                delay = 0.2
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is None or msg.get("type") != "message":
                        continue
                    try:
                        body = orjson.loads(msg["data"])
                    except orjson.JSONDecodeError:
                        continue
                    if body.get("o") != self._origin:
                        sites = [str(w) for w in body.get("w", [])]
                        for hook in self.remote_hooks:
                            hook(sites)
                        self._deliver(sites)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("realtime listener lost Redis (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
