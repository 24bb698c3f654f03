"""Real processes for the queue-mode tests: a Redis with AOF (``appendfsync always``) that
we start ourselves on a free port in a temp dir (never the machine's Redis),
``footfall writer`` processes and a tracking load generator that records every
acknowledged event id."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis

from tests.faults.server import ROOT, free_port


class AofRedis:
    """``redis-server`` on ``port`` with AOF fsynced on every write, data in ``workdir``."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port, self.workdir = port, workdir
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = shutil.which("redis-server")
        assert exe, "redis-server is required for this test"
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise TimeoutError("redis-server did not start")

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@contextlib.contextmanager
def own_aof_redis(prefix: str) -> Iterator[AofRedis]:
    """A Redis of our own (free port, temp dir named ``prefix…``, AOF with ``appendfsync
    always``), stopped and removed on exit."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        server = AofRedis(free_port(), Path(tmp))
        server.start()
        try:
            yield server
        finally:
            server.stop()


def queue_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "INGEST_QUEUE": "redis",
        "ENVIRONMENT": "test", "LOG_LEVEL": "warning", "BATCH_TIMEOUT": "5ms",
        "INGEST_CLAIM_IDLE": "1s", "RATE_LIMIT_IP_PER_MINUTE": "0",
        "RATE_LIMIT_WEBSITE_PER_MINUTE": "0", "MAX_DB_CONNECTIONS": "4", **extra,
    }  # fmt: skip


class WriterProcess:
    """``footfall writer --name NAME``; ``start()`` returns once it consumes."""

    def __init__(self, env: dict[str, str], name: str, logdir: Path) -> None:
        self.name = name
        self.env = {**os.environ, **env}
        self.log = logdir / f"writer-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "graph.cli", "writer", "--name", self.name],
            env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.log.open("wb"),
        )  # fmt: skip

    def wait_ready(self, wait: float = 30.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"writer exited early: {self.log.read_text()[-2000:]}")
            if "consuming" in self.log.read_text():
                return
            time.sleep(0.05)
        raise TimeoutError("writer did not start")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """Freeze the process (SIGSTOP): it holds whatever it has read."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def terminate(self, wait: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(wait)


def start_writers(env: dict[str, str], names: list[str], logdir: Path) -> list[WriterProcess]:
    """Start them in parallel (each imports the app: ~1–2 s), wait until all consume."""
    writers = [WriterProcess(env, n, logdir) for n in names]
    for w in writers:
        w.start()
    for w in writers:
        w.wait_ready()
    return writers


async def load(
    url: str, site: str, acked: set[str], stop: asyncio.Event, *, per_request: int = 10
) -> int:
    """Post batches until ``stop``; add the ids of every 201 to ``acked``; return how
    many requests were refused (non-2xx or connection errors)."""
    refused = 0
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        n = 0
        while not stop.is_set():
            n += 1
            ids = [str(uuid.uuid4()) for _ in range(per_request)]
            events = [
                {"id": i, "visitor_id": f"v{n % 7}", "session_id": f"s{n % 13}",
                 "page": f"/p{n % 5}", "timestamp": datetime.now(UTC).isoformat()}
                for i in ids
            ]  # fmt: skip
            try:
                r = await client.post(
                    "/api/v1/analytics/event/batch", json={"siteId": site, "events": events}
                )
            except httpx.HTTPError:
                refused += 1
                await asyncio.sleep(0.01)
                continue
            if r.status_code == 201:
                acked.update(ids)
            else:
                refused += 1
                await asyncio.sleep(0.01)
    return refused


def backlog(client: redis.Redis, streams: int = 4) -> tuple[int, int]:
    """(entries in the streams, entries read but not acknowledged) over all shards."""
    length = pending = 0
    for i in range(streams):
        key = f"footfall:ingest:{i}"
        length += int(client.xlen(key))  # type: ignore[arg-type]
        if client.exists(key):
            groups = client.xinfo_groups(key)
            pending += sum(int(g["pending"]) for g in groups)  # type: ignore[union-attr]
    return length, pending


async def wait_drained(client: redis.Redis, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if backlog(client) == (0, 0):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the writers did not drain the streams: {backlog(client)}")
