"""Realtime activity (last 5 minutes, server time) and commit notifications.

``PubSub`` tells subscribers that new events of a website were committed. The writer's
commit hook calls ``publish``; with Redis the notice goes through the channel
``footfall:commits`` so that every worker's subscribers hear every worker's commits,
without Redis only this process's. Redis trouble never fails a commit: the listener
reconnects with back-off, and local subscribers are always told directly.

Caches that other workers' commits must invalidate (the whole-response cache) rely on
the notices, so ``PubSub.reliable`` says whether they can arrive: not while the listener
is disconnected or after a publish failed (Redis unreachable), until the listener
(re)connects or a publish succeeds again; then ``reconnect_hooks`` run, since notices
may have been missed meanwhile. A publish that fails is retried once on a fresh
connection (pooled connections from before a Redis restart fail on first use).
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

from db import background
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


def forget_realtime(rt: Runtime, website_ids: Iterable[str] | None = None) -> None:
    """Drop this process's cached realtime answers of these websites (called on commit),
    or of all websites (``None``: commit notices may have been missed)."""
    cache = _cache(rt)
    if website_ids is None:
        cache.clear()
        return
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
        self.origin = uuid.uuid4().hex  # tells this process's notices from others'
        self._subs: dict[str, set[Subscription]] = {}
        self._task: asyncio.Task[None] | None = None
        self._listening = False  # subscribed to the channel right now
        self._tried = asyncio.Event()  # the listener's first attempt to subscribe is over
        self._publish_failed = False  # the last publish failed (until a reconnect/success)
        #: called with the website ids of every notice from another process
        self.remote_hooks: list[Callable[[list[str]], None]] = []
        #: called when notices can arrive again after they could not (drop cached answers)
        self.reconnect_hooks: list[Callable[[], None]] = []
        #: called with the website ids of another process's ``publish_changed``
        self.change_hooks: list[Callable[[list[str]], None]] = []

    @property
    def reliable(self) -> bool:
        """Other processes' commit notices reach this one: no Redis (one process), or the
        listener is subscribed and no publish has failed since."""
        return self._redis is None or (self._listening and not self._publish_failed)

    def _restored(self) -> None:
        self._publish_failed = False
        for hook in self.reconnect_hooks:
            hook()

    async def start(self, wait: float = 2.0) -> None:
        """Start the listener and wait (at most ``wait`` seconds) for its first attempt to
        subscribe, so that a new process caches whole responses from its first request
        when Redis answers."""
        if self._redis is not None and self._task is None:
            self._task = await background.start(
                self._listen(), "realtime-listener", self._tried, wait
            )

    async def close(self) -> None:
        await background.stop(self._task)
        self._task = None

    def deliver(self, website_ids: Iterable[str]) -> None:
        """Wake this process's subscribers of these websites."""
        for website_id in website_ids:
            for sub in self._subs.get(website_id, ()):
                sub.notify()

    async def publish(self, website_ids: list[str]) -> None:
        """Tell every worker's subscribers that these websites have new events."""
        self.deliver(website_ids)
        if self._redis is None or not website_ids:
            return
        await self._send(orjson.dumps({"o": self.origin, "w": website_ids}))

    async def _send(self, message: bytes) -> None:
        """Publish on the channel, once more on a fresh connection if that fails; a
        failure marks notices unreliable until a publish succeeds or the listener
        reconnects."""
        assert self._redis is not None
        try:
            try:
                await self._redis.publish(self._channel, message)
            except Exception:  # maybe a pooled connection from before a Redis restart
                with contextlib.suppress(Exception):
                    await self._redis.connection_pool.disconnect(inuse_connections=False)
                await self._redis.publish(self._channel, message)
        except Exception as exc:
            log.warning("realtime publish failed: %s", exc)
            self._publish_failed = True
            return
        if self._publish_failed and self._listening:
            self._restored()

    async def publish_changed(self, website_ids: list[str]) -> None:
        """Tell the other processes that these websites' settings changed (created,
        renamed, made private, deleted …), so that they drop their cached rows."""
        if self._redis is None or not website_ids:
            return
        await self._send(orjson.dumps({"o": self.origin, "w": website_ids, "c": 1}))

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
                self._listening = True
                self._restored()  # notices may have been missed while not listening
                self._tried.set()
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is None or msg.get("type") != "message":
                        continue
                    try:
                        body = orjson.loads(msg["data"])
                    except orjson.JSONDecodeError:
                        continue
                    if body.get("o") != self.origin:
                        sites = [str(w) for w in body.get("w", [])]
                        if body.get("c"):  # settings changed, no new events
                            for changed in self.change_hooks:
                                changed(sites)
                            continue
                        for hook in self.remote_hooks:
                            hook(sites)
                        self.deliver(sites)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._listening = False  # before the back-off: no notices meanwhile
                self._tried.set()
                log.warning("realtime listener lost Redis (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                self._listening = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
