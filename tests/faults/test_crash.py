"""Crash test: a real server under continuous load is SIGKILLed at a random moment, ten
times; every event whose request got a 2xx must be in the database afterwards."""

from __future__ import annotations

import asyncio
import random
import uuid

import asyncpg
import pytest

from tests.faults.queue_support import load
from tests.faults.server import ServerProcess

pytestmark = pytest.mark.slow


async def _started(
    database_url: str, name: str, batch_timeout: str
) -> tuple[ServerProcess, asyncpg.Connection, str]:
    """A running server, a direct connection, and a new website ``name-…``."""
    site = f"{name}-{uuid.uuid4().hex[:8]}"
    server = ServerProcess({"DATABASE_URL": database_url, "ENVIRONMENT": "test",
                            "BATCH_TIMEOUT": batch_timeout, "LOG_LEVEL": "warning"})  # fmt: skip
    server.start()
    conn = await asyncpg.connect(database_url)
    await conn.execute("INSERT INTO websites (id, domain) VALUES ($1, $2)", site, f"{name}.example")
    return server, conn, site


async def test_sigkill_loses_no_acknowledged_event(database_url: str) -> None:
    server, conn, site = await _started(database_url, "crash", "5ms")
    acked: set[str] = set()
    rng = random.Random(7)
    try:
        for round_ in range(10):
            if round_:
                server.start()
            stop = asyncio.Event()
            workers = [asyncio.create_task(load(server.url, site, acked, stop)) for _ in range(8)]
            await asyncio.sleep(rng.uniform(0.3, 1.2))
            server.kill()  # SIGKILL mid-load: no chance to drain
            stop.set()
            await asyncio.gather(*workers)
        stored = {
            str(r["id"])
            for r in await conn.fetch("SELECT id FROM events WHERE website_id = $1", site)
        }
        assert len(acked) > 100, "the load generator should have been acknowledged often"
        missing = acked - stored
        assert not missing, f"{len(missing)} acknowledged events lost"
        # sessions agree with the events that exist
        assert await conn.fetchval(
            "SELECT sum(pageviews) FROM sessions WHERE website_id = $1", site
        ) == len(stored)
    finally:
        server.kill()
        await conn.close()


async def test_sigterm_drains_under_load(database_url: str) -> None:
    server, conn, site = await _started(database_url, "drain", "20ms")
    acked: set[str] = set()
    stop = asyncio.Event()
    workers = [asyncio.create_task(load(server.url, site, acked, stop)) for _ in range(8)]
    await asyncio.sleep(1.0)
    code = await asyncio.to_thread(server.terminate)
    stop.set()
    await asyncio.gather(*workers)
    try:
        assert code in (0, -15)  # uvicorn re-raises the captured SIGTERM after a clean shutdown
        stored = {str(r["id"]) for r in await conn.fetch(
            "SELECT id FROM events WHERE website_id = $1", site)}  # fmt: skip
        assert acked and not (acked - stored)
    finally:
        await conn.close()
