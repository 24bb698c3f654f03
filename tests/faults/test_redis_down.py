"""Redis outage: a real ``footfall serve`` using a Redis that we start (its own
``redis-server`` on a free port in a temp dir — never the machine's) keeps tracking and
answering queries when that Redis stops, still enforces rate limits (in process), and
returns to Redis when it is back."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis

from tests.conftest import API_KEY, JWT_SECRET
from tests.faults.server import ServerProcess, free_port

pytestmark = pytest.mark.slow
LIMIT = 40  # events per minute per website on the server under test (the client is
# loopback, which the per-IP limit leaves alone)

QUERY = """query($id: ID!) { website(id: $id) { id stats(range: {preset: LAST_24_HOURS})
  { summary { pageviews visitors } } } }"""


class RedisServer:
    """A throw-away ``redis-server`` (no persistence) on ``port``, data in ``workdir``."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port, self.workdir = port, workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = shutil.which("redis-server")
        assert exe, "redis-server is required for this test"
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_timeout=0.2).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="footfall-redis-") as tmp:
        server = RedisServer(free_port(), Path(tmp))
        server.start()
        try:
            yield server
        finally:
            server.stop()


async def track(client: httpx.AsyncClient, site: str, n: int = 1, base: str = "") -> int:
    r = await client.post(base + "/api/v1/analytics/event/batch", json={"siteId": site,
        "events": [{"visitor_id": f"v{uuid.uuid4().hex[:6]}", "page": "/"} for _ in range(n)]})  # fmt: skip
    return r.status_code


async def query(client: httpx.AsyncClient, site: str, url: str = "/graphql") -> dict[str, object]:
    r = await client.post(url, json={"query": QUERY, "variables": {"id": site}},
                          headers={"X-API-Key": API_KEY})  # fmt: skip
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    assert "errors" not in body, body
    return body


async def test_tracking_and_queries_survive_a_redis_outage(
    database_url: str, own_redis: RedisServer
) -> None:
    site = f"redis-{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    server = ServerProcess({
        "DATABASE_URL": database_url, "REDIS_URL": f"redis://127.0.0.1:{own_redis.port}/0",
        "ENVIRONMENT": "test", "LOG_LEVEL": "error", "GLOBAL_API_KEY": API_KEY,
        "JWT_SECRET": JWT_SECRET, "RATE_LIMIT_WEBSITE_PER_MINUTE": str(LIMIT),
    })  # fmt: skip
    server.start()
    try:
        await conn.execute("INSERT INTO websites (id, domain) VALUES ($1, 'redis.example')", site)
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            assert await track(client, site, 5) == 201
            await query(client, site)
            probe = redis.Redis(port=own_redis.port)
            assert any(b":rl:site:" in k for k in probe.keys("ff:*")), "limits live in Redis"

            own_redis.stop()  # --- outage ---
            started = time.monotonic()
            for _ in range(5):
                assert await track(client, site, 2) == 201
                body = await query(client, site)
                assert body["data"]["website"]["stats"]["summary"]["pageviews"] >= 5  # type: ignore[index]
            assert time.monotonic() - started < 10, "an outage must not make requests slow"
            # Limits still hold, per process: LIMIT more events fit, then 429.
            statuses = [await track(client, site, 1) for _ in range(LIMIT + 5)]
            assert 429 in statuses and statuses[0] == 201

            own_redis.start()  # --- back ---
            await asyncio.sleep(5.5)  # the limiter retries Redis after its cool-down
            await query(client, site)
            assert await track(client, site, 1) == 201  # counted in Redis again
            assert any(b":rl:site:" in k for k in probe.keys("ff:*"))
        stored = await conn.fetchval("SELECT count(*) FROM events WHERE website_id = $1", site)
        assert stored >= 5 + 10 + 1
    finally:
        server.terminate()
        await conn.execute("DELETE FROM events WHERE website_id = $1", site)
        await conn.close()


async def _pageviews(client: httpx.AsyncClient, url: str, site: str) -> int:
    body = await query(client, site, url + "/graphql")
    return int(body["data"]["website"]["stats"]["summary"]["pageviews"])  # type: ignore[index]


async def _track_at(client: httpx.AsyncClient, url: str, site: str) -> None:
    assert await track(client, site, 1, url) == 201


async def test_two_processes_answer_fresh_through_a_redis_outage(
    database_url: str, own_redis: RedisServer
) -> None:
    """Processes A and B share Redis. While Redis is down, B's commit notices cannot
    reach A: A must not answer from its whole-response cache (stale up to 1 s) then. When
    Redis is back, the first commit notices reach the other process although pooled
    publish connections died with the old Redis (the publisher retries on a fresh one)."""
    site = f"redis2-{uuid.uuid4().hex[:8]}"
    env = {"DATABASE_URL": database_url, "REDIS_URL": f"redis://127.0.0.1:{own_redis.port}/0",
           "ENVIRONMENT": "test", "LOG_LEVEL": "error", "GLOBAL_API_KEY": API_KEY,
           "JWT_SECRET": JWT_SECRET, "MAX_DB_CONNECTIONS": "4"}  # fmt: skip
    a, b = ServerProcess(env), ServerProcess(env)
    await asyncio.gather(asyncio.to_thread(a.start), asyncio.to_thread(b.start))
    conn = await asyncpg.connect(database_url)
    await conn.execute("INSERT INTO websites (id, domain) VALUES ($1, 'redis2.example')", site)
    expected, stale = 0, []

    async def round_trip(asked: ServerProcess, writer: ServerProcess, what: str) -> None:
        """Ask ``asked`` (twice: cached if it caches), track at ``writer``, ask again."""
        nonlocal expected
        await _pageviews(client, asked.url, site)
        await _pageviews(client, asked.url, site)
        await _track_at(client, writer.url, site)
        expected += 1
        if (got := await _pageviews(client, asked.url, site)) != expected:
            stale.append((what, got, expected))

    try:
        async with httpx.AsyncClient(timeout=10) as client:
            await round_trip(a, b, "redis up")  # A's publish connection is now in its pool
            own_redis.stop()  # --- outage ---
            await asyncio.sleep(1.5)  # the listeners notice
            for _ in range(3):
                await round_trip(a, b, "redis down")
            own_redis.start()  # --- back ---
            await asyncio.sleep(6.5)  # listeners reconnect (back-off ≤ 5 s)
            await round_trip(b, a, "first notice after the outage")
            await round_trip(a, b, "redis back")
    finally:
        a.terminate()
        b.terminate()
        await conn.execute("DELETE FROM events WHERE website_id = $1", site)
        await conn.close()
    assert not stale, stale


async def test_commit_notices_are_unreliable_while_redis_is_away(own_redis: RedisServer) -> None:
    """``PubSub.reliable`` (what gates the response cache) is false from the moment the
    listener loses Redis until it subscribes again, and then the reconnect hooks run
    (cached answers are dropped: notices may have been missed)."""
    from graph.stats_runtime import PUBSUB_CONNECTIONS
    from graph.stats_runtime import _client as stats_client
    from resolvers.realtime import PubSub

    # the listener's client as the app builds it
    client = stats_client(f"redis://127.0.0.1:{own_redis.port}/0", PUBSUB_CONNECTIONS, None)
    pubsub = PubSub(client, channel=f"test:commits:{uuid.uuid4().hex[:8]}")
    restored: list[float] = []
    pubsub.reconnect_hooks.append(lambda: restored.append(time.monotonic()))

    async def until(condition: Callable[[], bool], seconds: float) -> None:
        for _ in range(int(seconds / 0.05)):
            if condition():
                return
            await asyncio.sleep(0.05)
        assert condition(), "timed out"

    try:
        await pubsub.start()
        assert pubsub.reliable and len(restored) == 1
        own_redis.stop()
        await until(lambda: not pubsub.reliable, 3)
        await pubsub.publish(["s"])  # fails: logged, never raised
        assert not pubsub.reliable
        own_redis.start()
        await until(lambda: pubsub.reliable, 8)
        assert len(restored) == 2
    finally:
        await pubsub.close()
        await client.aclose()
