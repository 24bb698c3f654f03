"""The stats cache, against the real Redis of the test run.

Given a settled range (ended long ago), the second identical query is answered from
Redis without any statement; importing an event into that past range bumps the
website's generation, so the next query recomputes and sees it. A Redis outage only
means uncached answers.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis.asyncio as aioredis

from graph.settings import Settings
from resolvers.cache import RedisCache
from resolvers.definitions import LIVE_CACHE_SECONDS, SETTLED_CACHE_SECONDS
from resolvers.ranges import Range
from resolvers.stats import ttl_for
from tests.conftest import gql, make_website
from tests.db_relay import Relay
from tests.reference.traffic import generate_traffic
from tests.security_support import other_app
from tests.stats_support import counting_reads, import_events, iso

START = datetime(2026, 8, 3, tzinfo=UTC)
END = datetime(2026, 8, 10, tzinfo=UTC)
#: QUERY's statements uncached: summary + series, and the PAGE breakdown beside it
#: (resolvers/stats_plans.py)
STATEMENTS = 2
QUERY = """query($id: ID!, $r: RangeInput!) { website(id: $id) { stats(range: $r) {
  summary { pageviews visitors } breakdown(dimension: PAGE, limit: 3) { rows { value } }
  timeseries(interval: DAY) { start visitors visitDuration } } } }"""


async def _query(client: httpx.AsyncClient, headers: dict[str, str], site: str) -> Any:
    res = await gql(client, QUERY, {"id": site, "r": {"from": iso(START), "to": iso(END)}},
                    headers)  # fmt: skip
    assert "errors" not in res, res
    return res["data"]["website"]["stats"]


async def test_second_query_is_served_from_redis_and_imports_invalidate(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str], redis_url: str
) -> None:
    site = await make_website(client, admin_headers, domain="cache.example")
    events = generate_traffic(5, site, "cache.example", START, END, n_visitors=15)
    await import_events(client, admin_headers, site, events)

    async with counting_reads(app) as first:
        before = await _query(client, admin_headers, site)
    assert len(first.ours) == STATEMENTS
    app.state.responses.bump()  # past the whole-response cache, to Redis
    async with counting_reads(app) as second:
        again = await _query(client, admin_headers, site)
    assert again == before and second.ours == []  # served from the cache

    redis = aioredis.from_url(redis_url)
    try:
        keys = [k async for k in redis.scan_iter(match=f"footfall:stats:v:{site}:*")]
        assert keys, "answers are stored in Redis"
        ttl = await redis.ttl(keys[0])
        assert LIVE_CACHE_SECONDS < ttl <= SETTLED_CACHE_SECONDS
    finally:
        await redis.aclose()

    late = {"id": "00000000-0000-4000-8000-000000000001", "visitor_id": "late-visitor",
            "session_id": "late-session", "event_type": "pageview", "page": "/late",
            "timestamp": iso(START + timedelta(days=1))}  # fmt: skip
    await import_events(client, admin_headers, site, [late])
    async with counting_reads(app) as third:
        after = await _query(client, admin_headers, site)
    assert len(third.ours) == STATEMENTS
    assert after["summary"]["pageviews"] == before["summary"]["pageviews"] + 1
    assert after["summary"]["visitors"] == before["summary"]["visitors"] + 1


async def test_redis_outage_degrades_to_uncached_answers(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    site = await make_website(client, admin_headers, domain="outage.example")
    events = generate_traffic(6, site, "outage.example", START, END, n_visitors=10)
    await import_events(client, admin_headers, site, events)
    rt = app.state.runtime
    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    real, rt.cache = rt.cache, RedisCache(dead)
    try:
        first = await _query(client, admin_headers, site)
        app.state.responses.bump()  # past the whole-response cache, to the stats cache
        async with counting_reads(app) as reads:
            second = await _query(client, admin_headers, site)
        await rt.cache.invalidate(site)  # must not raise either
    finally:
        rt.cache = real
        await dead.aclose()
    assert first == second and first["summary"]["pageviews"] > 0
    assert len(reads.ours) == STATEMENTS  # nothing cached, nothing failed


def test_ttl_policy() -> None:
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    settled = Range(now - timedelta(days=2), now - timedelta(hours=2), "UTC")
    live = Range(now - timedelta(days=1), now + timedelta(hours=1), "UTC")
    recent = Range(now - timedelta(days=1), now - timedelta(minutes=30), "UTC")
    assert ttl_for(settled, now) == SETTLED_CACHE_SECONDS
    assert ttl_for(live, now) == LIVE_CACHE_SECONDS
    assert ttl_for(recent, now) == LIVE_CACHE_SECONDS


async def test_invalidations_missed_while_redis_was_away_are_sent_when_it_is_back(
    app: Any, redis_url: str
) -> None:
    """A worker that could not bump a website's generation (Redis away) sends it as soon
    as its commit listener is back — not at its own next cache use, which may be long
    after other workers have read the entry it meant to drop."""
    target = urlsplit(redis_url)
    relay = Relay((target.hostname or "127.0.0.1", target.port or 6379))
    await relay.open()
    client = aioredis.from_url(relay.dsn(redis_url), socket_connect_timeout=0.5,
                               socket_timeout=0.5)  # fmt: skip
    namespace = f"test-missed-{uuid.uuid4().hex}:"
    rt = app.state.runtime
    real, rt.cache = rt.cache, RedisCache(client, namespace)
    direct = aioredis.from_url(redis_url)
    try:
        await relay.close()
        await rt.cache.invalidate("site-away")  # fails: kept as pending
        await relay.open()
        assert await direct.get(f"{namespace}gen:site-away") is None
        for hook in rt.pubsub.reconnect_hooks:  # what the listener does on resubscribing
            hook()
        for _ in range(50):
            if await direct.get(f"{namespace}gen:site-away") is not None:
                break
            await asyncio.sleep(0.02)
        assert await direct.get(f"{namespace}gen:site-away") == b"1"
    finally:
        rt.cache = real
        await relay.close()
        await client.aclose()
        await direct.delete(f"{namespace}gen:site-away")
        await direct.aclose()


async def test_without_redis_another_process_s_import_shows_at_once(
    client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    """Two processes on one database and no Redis (a server and ``footfall import``): the
    server's in-process cache holds a settled range for an hour, yet events committed by
    the other process show in its next answers (commit notices through PostgreSQL)."""
    site = await make_website(client, admin_headers, domain="notices.example")
    no_redis = {"redis_url": None}
    async with other_app(settings, "198.51.100.61", **no_redis) as (server, _), \
            other_app(settings, "198.51.100.62", **no_redis) as (importer, _):  # fmt: skip
        before = await _query(server, admin_headers, site)  # cached (settled range)
        assert before["summary"]["pageviews"] == 0
        events = generate_traffic(9, site, "notices.example", START, END, n_visitors=5)
        await import_events(importer, admin_headers, site, events)
        views = sum(1 for e in events if e["event_type"] == "pageview")
        got = before
        for _ in range(40):
            got = await _query(server, admin_headers, site)
            if got["summary"]["pageviews"] == views:
                break
            await asyncio.sleep(0.05)
        assert got["summary"]["pageviews"] == views > 0, got
