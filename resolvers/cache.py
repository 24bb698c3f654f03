"""Cache of stats answers: Redis when configured, in-process otherwise.

Keys are ``(website_id, digest)`` where the digest covers everything that changes the
answer (range, zone, filters, query shape). A per-website *generation* number is part
of the stored key; ``invalidate`` bumps it (the writer's commit hook and website
deletion call it), so older entries are simply never read again and expire by TTL.
The TTL policy (settled ranges 1 h, ranges touching now 5 s) is the caller's.

Redis trouble never fails a request: the cache answers "miss" and stores nothing for
``RETRY_AFTER`` seconds, and remembers the websites it could not invalidate so that
their generations are bumped first when Redis answers again.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

log = logging.getLogger("footfall.cache")

CacheKey = tuple[str, str]  # (website_id, digest)
RETRY_AFTER = 5.0
NAMESPACE = "footfall:stats:"


class StatsCache(Protocol):
    async def lookup(self, keys: Sequence[CacheKey]) -> list[tuple[str | None, bytes | None]]:
        """Per key: the stored key to write back to (None: do not store) and the value."""
        ...

    async def store(self, entries: Sequence[tuple[str, bytes, int]]) -> None:
        """Store ``(stored key, value, ttl seconds)`` entries."""
        ...

    async def invalidate(self, website_id: str) -> None: ...

    async def invalidate_many(self, website_ids: Iterable[str]) -> None: ...

    async def close(self) -> None: ...


class MemoryCache:
    """One process: an LRU of at most ``max_entries`` with per-entry expiry. With
    ``gate`` set and false (other processes' commit notices cannot arrive:
    ``db.notices.Listener.reliable``), nothing is served or stored; invalidations always
    go through."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self.gate: Callable[[], bool] | None = None
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._generations: dict[str, int] = {}

    def _closed(self) -> bool:
        return self.gate is not None and not self.gate()

    def _key(self, key: CacheKey) -> str:
        return f"{key[0]}:{self._generations.get(key[0], 0)}:{key[1]}"

    async def lookup(self, keys: Sequence[CacheKey]) -> list[tuple[str | None, bytes | None]]:
        if self._closed():
            return [(None, None)] * len(keys)
        now = time.monotonic()
        out: list[tuple[str | None, bytes | None]] = []
        for key in keys:
            stored = self._key(key)
            hit = self._entries.get(stored)
            if hit is not None and hit[0] > now:
                self._entries.move_to_end(stored)
                out.append((stored, hit[1]))
            else:
                out.append((stored, None))
        return out

    async def store(self, entries: Sequence[tuple[str, bytes, int]]) -> None:
        if self._closed():
            return
        now = time.monotonic()
        for stored, value, ttl in entries:
            self._entries[stored] = (now + ttl, value)
            self._entries.move_to_end(stored)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def drop(self, website_ids: Iterable[str] | None) -> None:
        """Invalidate these websites' entries, or every entry (``None``: commit notices
        of other processes may have been missed)."""
        if website_ids is None:
            self._entries.clear()
            return
        for website_id in website_ids:
            self._generations[website_id] = self._generations.get(website_id, 0) + 1

    async def invalidate(self, website_id: str) -> None:
        self.drop([website_id])

    async def invalidate_many(self, website_ids: Iterable[str]) -> None:
        self.drop(website_ids)

    async def close(self) -> None:
        self._entries.clear()


class RedisCache:
    """Shared by every worker through Redis (``redis.asyncio`` client given)."""

    def __init__(self, client: Any, namespace: str = NAMESPACE) -> None:
        self._redis = client
        self._ns = namespace
        self._down_until = 0.0
        self._pending: set[str] = set()  # invalidations Redis missed

    def _gen_key(self, website_id: str) -> str:
        return f"{self._ns}gen:{website_id}"

    def _failed(self, what: str, exc: Exception) -> None:
        if time.monotonic() >= self._down_until:
            log.warning("redis cache %s failed (%s); answering uncached", what, exc)
        self._down_until = time.monotonic() + RETRY_AFTER

    async def _usable(self) -> bool:
        if time.monotonic() < self._down_until:
            return False
        if self._pending:
            pending, self._pending = self._pending, set()
            try:
                await self._bump(pending)
            except Exception as exc:
                self._pending |= pending
                self._failed("invalidate", exc)
                return False
        return True

    async def lookup(self, keys: Sequence[CacheKey]) -> list[tuple[str | None, bytes | None]]:
        if not keys or not await self._usable():
            return [(None, None)] * len(keys)
        sites = sorted({k[0] for k in keys})
        try:
            gens = await self._redis.mget([self._gen_key(s) for s in sites])
            gen_of = {s: (g.decode() if isinstance(g, bytes) else str(g or 0))
                      for s, g in zip(sites, gens, strict=True)}  # fmt: skip
            stored = [f"{self._ns}v:{k[0]}:{gen_of[k[0]]}:{k[1]}" for k in keys]
            values = await self._redis.mget(stored)
        except Exception as exc:
            self._failed("lookup", exc)
            return [(None, None)] * len(keys)
        return list(zip(stored, values, strict=True))

    async def store(self, entries: Sequence[tuple[str, bytes, int]]) -> None:
        if not entries or not await self._usable():
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for stored, value, ttl in entries:
                    pipe.set(stored, value, ex=ttl)
                await pipe.execute()
        except Exception as exc:
            self._failed("store", exc)

    async def _bump(self, website_ids: Iterable[str]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for website_id in website_ids:
                pipe.incr(self._gen_key(website_id))
            await pipe.execute()

    async def invalidate(self, website_id: str) -> None:
        await self.invalidate_many([website_id])

    async def redis_back(self) -> None:
        """Redis answers again (the commit listener resubscribed): send the invalidations
        it missed now, not at this process's next cache use — meanwhile the other
        processes would read the entries they were meant to drop."""
        self._down_until = 0.0
        await self._usable()

    async def invalidate_many(self, website_ids: Iterable[str]) -> None:
        ids = set(website_ids)
        if not ids:
            return
        if time.monotonic() < self._down_until:
            self._pending |= ids
            return
        try:
            await self._bump(ids | self._pending)
            self._pending.clear()
        except Exception as exc:
            self._pending |= ids
            self._failed("invalidate", exc)

    async def close(self) -> None:
        """The Redis client belongs to the app's lifespan; nothing to close here."""
