"""Queue-mode ingest (``INGEST_QUEUE=redis``) with real processes: API servers append to
Redis Streams (our own Redis, AOF ``appendfsync always``), ``footfall writer``
processes commit. Acknowledged means stored exactly once, whatever dies."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import JWT_SECRET
from tests.faults.queue_support import (
    AofRedis,
    backlog,
    load,
    queue_env,
    start_writers,
    wait_drained,
)
from tests.faults.realtime_client import subscribe, wait_for_pageviews
from tests.faults.server import ServerProcess

pytestmark = pytest.mark.slow


async def _site(conn: asyncpg.Connection, prefix: str) -> str:
    site = f"{prefix}-{uuid.uuid4().hex[:8]}"
    await conn.execute("INSERT INTO websites (id, domain) VALUES ($1, $2)", site, f"{site}.example")
    return site


def _pending_of(redis: Any, consumer: str) -> int:
    """Entries ``consumer`` has read and not acknowledged, over all four streams."""
    return sum(
        int(c["pending"])
        for k in range(4)
        for c in redis.xinfo_consumers(f"footfall:ingest:{k}", "writers")
        if c["name"] == consumer.encode()
    )


async def _assert_stored_once(conn: asyncpg.Connection, site: str, acked: set[str]) -> None:
    rows = await conn.fetch(
        "SELECT id::text AS id, count(*) AS n FROM events WHERE website_id = $1 GROUP BY id", site
    )
    stored = {r["id"] for r in rows}
    assert acked, "the load generator should have been acknowledged"
    assert not (acked - stored), f"{len(acked - stored)} acknowledged events lost"
    assert stored == acked, "only acknowledged events are stored"
    assert all(r["n"] == 1 for r in rows), "an event is stored twice"
    # replays must not count twice in sessions either: one page view per stored event
    assert await conn.fetchval(
        "SELECT sum(pageviews) FROM sessions WHERE website_id = $1", site
    ) == len(stored)


async def test_sigkilled_writer_loses_nothing_and_counts_nothing_twice(
    database_url: str, aof_redis: AofRedis, tmp_path: Path
) -> None:
    env = queue_env(database_url, aof_redis.url)
    api = ServerProcess(env)
    _, writers = await asyncio.gather(  # start everything at once: each process imports
        asyncio.to_thread(api.start),  # the app (seconds of CPU on a 2-core machine)
        asyncio.to_thread(start_writers, env, ["w0", "w1", "w2"], tmp_path),
    )
    conn = await asyncpg.connect(database_url)
    redis = aof_redis.client()
    try:
        site = await _site(conn, "qkill")
        acked: set[str] = set()
        stop = asyncio.Event()
        clients = [asyncio.create_task(load(api.url, site, acked, stop)) for _ in range(12)]
        await asyncio.sleep(1.0)
        # kill w0 while it holds entries it has read but not acknowledged (mid-batch):
        # freeze it, look at what it holds, and SIGKILL it only when that is something
        pending_at_kill = 0
        deadline = time.monotonic() + 10
        while not pending_at_kill and time.monotonic() < deadline:
            writers[0].stop()
            pending_at_kill = _pending_of(redis, "w0")
            if pending_at_kill:
                writers[0].kill()
            else:
                writers[0].resume()
                await asyncio.sleep(0.01)
        await asyncio.sleep(1.5)  # load goes on with two writers; w0's entries go idle
        stop.set()
        await asyncio.gather(*clients)
        assert writers[0].proc is not None and writers[0].proc.returncode is not None
        assert pending_at_kill > 0, "w0 was killed holding entries"
        await wait_drained(redis)
        await _assert_stored_once(conn, site, acked)
        for k in range(4):  # the dead writer's entries were claimed by the others
            for c in redis.xinfo_consumers(f"footfall:ingest:{k}", "writers"):
                assert int(c["pending"]) == 0
    finally:
        for w in writers:
            w.kill()
        api.kill()
        await conn.close()


async def test_two_apis_two_writers_store_what_was_acknowledged(
    database_url: str, aof_redis: AofRedis, tmp_path: Path
) -> None:
    env = queue_env(database_url, aof_redis.url, JWT_SECRET=JWT_SECRET)
    apis = [ServerProcess(env), ServerProcess(env)]
    *_, writers = await asyncio.gather(
        *(asyncio.to_thread(a.start) for a in apis),
        asyncio.to_thread(start_writers, env, ["a", "b"], tmp_path),
    )
    conn = await asyncpg.connect(database_url)
    try:
        site = await _site(conn, "qload")
        # a realtime subscriber on API 0 hears commits of events posted to either API
        ws = await subscribe(apis[0].url, site)
        try:
            acked: set[str] = set()
            stop = asyncio.Event()
            clients = [
                asyncio.create_task(load(apis[i % 2].url, site, acked, stop)) for i in range(24)
            ]
            await asyncio.sleep(3.0)
            for _ in range(70):  # on a slow machine, up to 7 s more for 2,000 events
                if len(acked) >= 2000:
                    break
                await asyncio.sleep(0.1)
            stop.set()
            refused = await asyncio.gather(*clients)
            assert sum(refused) == 0
            await wait_for_pageviews(ws, 1, within=5)
        finally:
            await ws.close()
        await wait_drained(aof_redis.client())
        await _assert_stored_once(conn, site, acked)
        assert len(acked) > 200
        async with httpx.AsyncClient() as http:
            health = (await http.get(apis[1].url + "/health")).json()
        assert health["ingest"]["mode"] == "redis"
        assert health["ingest"]["redis"]["durable"] is True
        assert sum(health["ingest"]["streams"].values()) == 0
    finally:
        for w in writers:
            w.terminate()
        for a in apis:
            a.kill()
        await conn.close()


async def test_full_stream_answers_503_until_drained(
    database_url: str, aof_redis: AofRedis, tmp_path: Path
) -> None:
    env = queue_env(database_url, aof_redis.url, INGEST_MAX_PENDING="20")
    api = ServerProcess(env)
    await asyncio.to_thread(api.start)
    conn = await asyncpg.connect(database_url)
    writers = []
    try:
        site = await _site(conn, "qfull")
        body = {"siteId": site, "events": [{"visitor_id": "v", "page": "/"}]}
        async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
            statuses = []
            for _ in range(40):  # no writer runs: the site's stream only grows
                r = await http.post("/api/v1/analytics/event/batch", json=body)
                statuses.append(r.status_code)
                if r.status_code == 503:
                    break
            assert statuses.count(201) >= 20 and statuses[-1] == 503, statuses
            assert int(r.headers["Retry-After"]) >= 1
            assert "queue full" in r.json()["error"]
            accepted = statuses.count(201)
            writers = await asyncio.to_thread(start_writers, env, ["drain"], tmp_path)
            await wait_drained(aof_redis.client())
            await asyncio.sleep(0.2)  # the API's cached stream length expires (100 ms)
            r = await http.post("/api/v1/analytics/event/batch", json=body)
            assert r.status_code == 201, r.text
            await wait_drained(aof_redis.client())
        assert (
            await conn.fetchval("SELECT count(*) FROM events WHERE website_id = $1", site)
            == accepted + 1
        )
        assert backlog(aof_redis.client()) == (0, 0)
    finally:
        for w in writers:
            w.terminate()
        api.kill()
        await conn.close()
