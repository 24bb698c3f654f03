"""The long-lived services an operation needs, built by the app's lifespan."""

from __future__ import annotations

import ipaddress
import re
import time
from dataclasses import dataclass, field
from typing import Any

from db.pool import Pools
from db.queries import websites as website_sql
from db.queries.websites import WebsiteRow
from db.writer import RowWriter
from resolvers.enrich import GeoLocator

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_WEBSITE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")  # the websites.id CHECK constraint


class WebsiteCache:
    """Website rows by id, cached in-process for ``ttl`` seconds (tracking hot path)."""

    def __init__(self, pools: Pools, ttl: float = 10.0) -> None:
        self._pools = pools
        self._ttl = ttl
        self._rows: dict[str, tuple[float, WebsiteRow | None]] = {}

    async def get(self, website_id: str) -> WebsiteRow | None:
        """The website, or None (also for ids that cannot exist: no query is sent)."""
        if not _WEBSITE_ID.fullmatch(website_id):
            return None
        hit = self._rows.get(website_id)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        rows = await website_sql.get_many(self._pools.write, [website_id])
        row = rows[0] if rows else None
        if len(self._rows) > 10_000:
            self._rows.clear()
        self._rows[website_id] = (now + self._ttl, row)
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
    cache: Any = None  # resolvers.cache.StatsCache, set by the app
    pubsub: Any = None  # resolvers.realtime.PubSub, set by the app
    websites: WebsiteCache = field(init=False)
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.websites = WebsiteCache(self.pools)
