"""Queue-mode ingest next to the direct group commit (``python -m bench.ingest --queue``).

For 1, 2 and 4 ``footfall writer`` processes behind one API (``INGEST_QUEUE=redis``,
our own Redis with AOF ``appendfsync always`` in a temp dir):

- drain: a backlog queued with the writers stopped is committed by N writers while
  the API is idle — the writers' own capacity;
- under load: the API is saturated by the load generator while N writers commit —
  events/s acknowledged (in Redis) and committed (acknowledged minus what the backlog
  grew by), and the backlog left at the end;
- CPU over the loaded window in % of one core: the whole machine (``os.cpu_count()`` ×
  100 is everything), the API workers, the writers, Redis and the load generator;
  the rest is PostgreSQL (and whatever else runs on the machine).

Rates count rows written, not rows new: like the direct-mode figure, the load
generator cycles through 400 request bodies, so most rows are resent ids that
``ON CONFLICT DO NOTHING`` skips (the writer still decodes, COPYs and merges them).
"""

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
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import psutil
import redis

from bench.common import ROOT, Server, free_port

Saturate = Callable[[str, float, int, Server], Awaitable[tuple[float, float]]]
WRITER_COUNTS = (1, 2, 4)
EVENTS_PER_ENTRY = 50  # bench.ingest.batch_body: one request = one entry of 50 rows


@contextlib.contextmanager
def aof_redis() -> Iterator[tuple[str, redis.Redis, int]]:
    """``redis-server`` with AOF fsynced on every write; yields (url, client, pid)."""
    exe = shutil.which("redis-server")
    assert exe, "redis-server is required for --queue"
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="footfall-bench-redis-") as tmp:
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp, "--appendonly",
             "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=port)
        try:
            for _ in range(100):
                with contextlib.suppress(redis.RedisError):
                    if client.ping():
                        break
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0", client, proc.pid
        finally:
            proc.terminate()
            proc.wait(10)


def start_writers(env: dict[str, str], n: int, logdir: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(n):
        log = (logdir / f"writer-{i}.log").open("wb")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "graph.cli", "writer", "--name", f"bench-{n}-{i}"],
            env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
        ))  # fmt: skip
    deadline = time.monotonic() + 60
    for i in range(n):
        while "consuming" not in (logdir / f"writer-{i}.log").read_text():
            assert time.monotonic() < deadline, "writer did not start"
            time.sleep(0.05)
    return procs


def stop_writers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(30)


def backlog(client: redis.Redis, streams: int = 4) -> int:
    return sum(int(client.xlen(f"footfall:ingest:{i}")) for i in range(streams))


async def drain_rate(client: redis.Redis) -> float:
    """Events/s taken off the streams until they are empty, sampled every 0.1 s."""
    t0, b0 = time.perf_counter(), backlog(client)
    t1, b1 = t0, b0
    while b1:
        await asyncio.sleep(0.1)
        t1, b1 = time.perf_counter(), backlog(client)
    return EVENTS_PER_ENTRY * (b0 - b1) / (t1 - t0) if t1 > t0 else 0.0


def _cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def _busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores) since boot."""
    t = psutil.cpu_times()
    return float(sum(getattr(t, f, 0.0) for f in ("user", "system", "nice", "irq", "softirq")))


def _roles(
    api: Server, writers: list[subprocess.Popen[bytes]], redis_pid: int
) -> dict[str, list[psutil.Process]]:
    assert api.proc is not None
    parent = psutil.Process(api.proc.pid)
    return {
        "api": [parent, *parent.children(recursive=True)],
        "writers": [psutil.Process(w.pid) for w in writers],
        "redis": [psutil.Process(redis_pid)],
        "loadgen": [psutil.Process()],
    }


async def queue_rows(
    dsn: str, seconds: float, clients: int, workers: int, saturate: Saturate
) -> list[list[object]]:
    """One table row per writer count (see the module docstring)."""
    rows: list[list[object]] = []
    with aof_redis() as (url, client, redis_pid), tempfile.TemporaryDirectory() as logs:
        env = {
            "DATABASE_URL": dsn, "REDIS_URL": url, "INGEST_QUEUE": "redis",
            "WORKER_COUNT": str(workers), "RATE_LIMIT_IP_PER_MINUTE": "0",
            "RATE_LIMIT_WEBSITE_PER_MINUTE": "0", "ENVIRONMENT": "test", "LOG_LEVEL": "warning",
        }  # fmt: skip
        with Server(env) as api:
            await saturate(api.url, 2, clients, api)  # warm-up (fills a first backlog)
            for n in WRITER_COUNTS:
                await saturate(api.url, seconds / 2, clients, api)  # a backlog to drain
                writers = start_writers(env, n, Path(logs))
                try:
                    drained = await drain_rate(client)
                    roles = _roles(api, writers, redis_pid)
                    cpu0 = {k: _cpu_seconds(v) for k, v in roles.items()}
                    busy0, b0 = _busy_seconds(), backlog(client)
                    t0 = time.perf_counter()
                    acked, _ = await saturate(api.url, seconds, clients, api)
                    elapsed = time.perf_counter() - t0
                    left = backlog(client)
                    cpu = {k: 100 * (_cpu_seconds(v) - cpu0[k]) / elapsed for k, v in roles.items()}
                    cpu["total"] = 100 * (_busy_seconds() - busy0) / elapsed
                    committed = acked - EVENTS_PER_ENTRY * (left - b0) / elapsed
                    await drain_rate(client)  # empty the queue before the next count
                finally:
                    stop_writers(writers)
                rows.append([
                    f"{n} writer{'s' if n > 1 else ''}", f"{acked:,.0f}", f"{committed:,.0f}",
                    f"{drained:,.0f}", f"{left:,}",
                    " / ".join(f"{cpu[k]:.0f}" for k in ("total", "api", "writers", "redis",
                                                          "loadgen")),
                ])  # fmt: skip
    return rows
