"""Many workers: two ``footfall serve`` processes on different ports that share
``DATABASE_URL`` and ``REDIS_URL`` behave as two uvicorn workers of one service. A
realtime subscription on worker A hears events posted to worker B (the commit notice
goes through Redis pub/sub), and B's commit invalidates A's cached answers. One
``footfall serve`` with ``WORKER_COUNT=2`` and no Redis answers uncached, so either worker
shows every acknowledged event."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from tests.conftest import JWT_SECRET
from tests.faults.queue_support import AofRedis
from tests.faults.realtime_client import next_realtime, read_token, subscribe
from tests.faults.server import ServerProcess

pytestmark = pytest.mark.slow

SUMMARY = """query($id: ID!) { website(id: $id) { stats(range: {preset: LAST_24_HOURS})
  { summary { pageviews } } } }"""


async def test_subscription_on_one_worker_hears_events_posted_to_another(
    database_url: str, aof_redis: AofRedis
) -> None:
    env = {"DATABASE_URL": database_url, "REDIS_URL": aof_redis.url, "ENVIRONMENT": "test",
           "LOG_LEVEL": "warning", "JWT_SECRET": JWT_SECRET, "MAX_DB_CONNECTIONS": "4"}  # fmt: skip
    a, b = ServerProcess(env), ServerProcess(env)
    await asyncio.gather(asyncio.to_thread(a.start), asyncio.to_thread(b.start))
    conn = await asyncpg.connect(database_url)
    site = f"workers-{uuid.uuid4().hex[:8]}"
    await conn.execute("INSERT INTO websites (id, domain) VALUES ($1, 'workers.example')", site)
    auth = {"Authorization": f"Bearer {read_token(site)}"}
    ws = await subscribe(a.url, site)
    try:
        assert await next_realtime(ws, 5) == {"visitors": 0, "pageviews": 0}
        async with httpx.AsyncClient(timeout=10) as http:
            before = await http.post(a.url + "/graphql", json={"query": SUMMARY,
                                     "variables": {"id": site}}, headers=auth)  # fmt: skip
            assert before.json()["data"]["website"]["stats"]["summary"]["pageviews"] == 0
            event = {"website_id": site, "visitor_id": "v1", "session_id": "s1", "page": "/",
                     "timestamp": datetime.now(UTC).isoformat()}  # fmt: skip
            r = await http.post(b.url + "/api/v1/analytics/event", json=event)
            assert r.status_code == 201, r.text
            assert await next_realtime(ws, 5) == {"visitors": 1, "pageviews": 1}
            after = await http.post(a.url + "/graphql", json={"query": SUMMARY,
                                    "variables": {"id": site}}, headers=auth)  # fmt: skip
            assert after.json()["data"]["website"]["stats"]["summary"]["pageviews"] == 1
    finally:
        await ws.close()
        a.kill()
        b.kill()
        await conn.close()


async def _fresh_pageviews(http: httpx.AsyncClient, url: str, site: str) -> int:
    """The summary's page views, asked on a new connection (so that any worker answers)."""
    r = await http.post(url + "/graphql", json={"query": SUMMARY, "variables": {"id": site}},
                        headers={"Authorization": f"Bearer {read_token(site)}",
                                 "Connection": "close"})  # fmt: skip
    assert r.status_code == 200, r.text
    return int(r.json()["data"]["website"]["stats"]["summary"]["pageviews"])


async def test_two_workers_without_redis_show_every_acknowledged_event(database_url: str) -> None:
    """WORKER_COUNT=2 and no REDIS_URL: a worker never hears the other's commits, so it
    must not answer from its in-process caches — every query right after an acknowledged
    event counts it, whichever worker answers. Start-up warns once that state is per
    worker."""
    env = {"DATABASE_URL": database_url, "REDIS_URL": "", "WORKER_COUNT": "2",
           "ENVIRONMENT": "test", "LOG_LEVEL": "warning", "JWT_SECRET": JWT_SECRET,
           "MAX_DB_CONNECTIONS": "4"}  # fmt: skip
    server = ServerProcess(env)
    await asyncio.to_thread(server.start)
    conn = await asyncpg.connect(database_url)
    site = f"noredis-{uuid.uuid4().hex[:8]}"
    await conn.execute("INSERT INTO websites (id, domain) VALUES ($1, 'noredis.example')", site)
    seen: list[tuple[int, list[int]]] = []
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            for n in range(1, 7):
                for _ in range(4):  # answers (and caches, if any) in both workers
                    await _fresh_pageviews(http, server.url, site)
                event = {"website_id": site, "visitor_id": f"v{n}", "session_id": f"s{n}",
                         "page": "/", "timestamp": datetime.now(UTC).isoformat()}  # fmt: skip
                r = await http.post(server.url + "/api/v1/analytics/event", json=event,
                                    headers={"Connection": "close"})  # fmt: skip
                assert r.status_code == 201, r.text
                seen.append((n, [await _fresh_pageviews(http, server.url, site) for _ in range(6)]))
    finally:
        server.terminate()
        await conn.close()
    assert all(counts == [n] * len(counts) for n, counts in seen), seen
    assert server.proc is not None and server.proc.stderr is not None
    log = server.proc.stderr.read().decode()
    assert log.count("WORKER_COUNT=2 without REDIS_URL") == 1, log[-3000:]


def _ingested(text: str) -> float:
    """``footfall_events_ingested_total`` summed over doors, from a /metrics answer."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == "footfall_events_ingested_total")  # fmt: skip


async def test_metrics_of_two_workers_count_every_event(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """WORKER_COUNT=2: whichever worker answers /metrics reports both workers' series
    (prometheus-client multiprocess mode in a directory ``footfall serve`` creates and
    removes)."""
    tmp = tmp_path_factory.mktemp("metrics")
    env = {"DATABASE_URL": database_url, "REDIS_URL": "", "WORKER_COUNT": "2",
           "ENVIRONMENT": "test", "LOG_LEVEL": "error", "JWT_SECRET": JWT_SECRET,
           "MAX_DB_CONNECTIONS": "4", "TMPDIR": str(tmp)}  # fmt: skip
    server = ServerProcess(env)
    await asyncio.to_thread(server.start)
    conn = await asyncpg.connect(database_url)
    site = f"metrics-{uuid.uuid4().hex[:8]}"
    await conn.execute("INSERT INTO websites (id, domain) VALUES ($1, 'metrics.example')", site)
    close = {"Connection": "close"}  # a new connection per request: either worker answers
    events = 12
    try:
        assert [p.name.startswith("footfall-metrics-") for p in tmp.iterdir()] == [True]
        async with httpx.AsyncClient(timeout=10) as http:
            for i in range(events):
                event = {"website_id": site, "visitor_id": f"v{i}", "session_id": f"s{i}",
                         "page": "/"}  # fmt: skip
                r = await http.post(server.url + "/api/v1/analytics/event", json=event,
                                    headers=close)  # fmt: skip
                assert r.status_code == 201, r.text
            scrapes = [(await http.get(server.url + "/metrics", headers=close)).text
                       for _ in range(8)]  # fmt: skip
    finally:
        server.terminate()
        await conn.close()
    assert [_ingested(text) for text in scrapes] == [events] * len(scrapes)
    assert all('footfall_db_pool_connections{state="total"}' in t for t in scrapes)
    assert not list(tmp.iterdir()), "the metrics directory is removed at exit"
