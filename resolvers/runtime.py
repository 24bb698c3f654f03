"""The long-lived services an operation needs, built by the app's lifespan."""

from __future__ import annotations

import ipaddress
import re
import time
from dataclasses import dataclass, field
from typing import Any

from db.ingest_queue import QueueWriter
from db.pool import Pools
from db.queries import websites as website_sql
from db.queries.websites import WebsiteRow
from db.writer import RowWriter
from resolvers.enrich import GeoLocator

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_WEBSITE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")  # the websites.id CHECK constraint
WEBSITE_TTL = 10.0  # seconds a website row is served from process memory
MAX_CACHED_WEBSITES = 10_000  # entries before the cache starts over


def valid_website_id(website_id: str) -> bool:
    """``website_id`` could exist (1–64 of ``A-Za-z0-9_.:-``, the table's CHECK)."""
    return _WEBSITE_ID.fullmatch(website_id) is not None


class WebsiteCache:
    """Website rows by id, cached in-process for ``ttl`` seconds (tracking hot path).

    Expired rows are kept until the cache starts over (``MAX_CACHED_WEBSITES``), so that
    queue-mode ingest can serve ``last_known`` rows while the database is unreachable
    (``resolvers.ingest_fallback``); ``get`` itself never answers from an expired row."""

    def __init__(self, pools: Pools, ttl: float = WEBSITE_TTL) -> None:
        self._pools = pools
        self.ttl = ttl
        self._rows: dict[str, tuple[float, WebsiteRow | None]] = {}

    def is_fresh(self, website_id: str) -> bool:
        """``get`` would answer from memory (no query) right now."""
        hit = self._rows.get(website_id)
        return hit is not None and hit[0] > time.monotonic()

    def last_known(self, website_id: str) -> WebsiteRow | None:
        """The row last read from the database, however old (None: never read, or
        the website did not exist then)."""
        hit = self._rows.get(website_id)
        return hit[1] if hit is not None else None

    async def get(self, website_id: str) -> WebsiteRow | None:
        """The website, or None (also for ids that cannot exist: no query is sent)."""
        if not valid_website_id(website_id):
            return None
        hit = self._rows.get(website_id)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        rows = await website_sql.get_many(self._pools.write, [website_id])
        row = rows[0] if rows else None
        if len(self._rows) > MAX_CACHED_WEBSITES:
            self._rows.clear()
        self._rows[website_id] = (now + self.ttl, row)
        return row

    def forget(self, website_id: str) -> None:
        self._rows.pop(website_id, None)


@dataclass
class Runtime:
    """Pools, writer, GeoIP, caches and the settings operations depend on."""

    pools: Pools
    writer: RowWriter  # BatchWriter (direct) or db.ingest_queue.QueueWriter (redis)
    geo: GeoLocator
    trusted_proxies: tuple[Network, ...] = ()
    retention_days: int = 730
    timescale: bool = False
    session_rollup: bool = True  # settings.stats_session_rollup
    funnel_rollup: bool = False  # settings.funnel_rollup, and not on TimescaleDB
    day_rollup: bool = False  # settings.stats_day_rollup, and not on TimescaleDB
    cache: Any = None  # resolvers.cache.StatsCache, set by the app
    pubsub: Any = None  # resolvers.realtime.PubSub, set by the app
    websites: WebsiteCache = field(init=False)
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.websites = WebsiteCache(self.pools)

    @property
    def queued(self) -> bool:
        """Queue mode (``INGEST_QUEUE=redis``): tracking appends to Redis Streams and
        ``footfall writer`` commits, so tracking can go on while PostgreSQL is down."""
        return isinstance(self.writer, QueueWriter)
