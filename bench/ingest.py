"""Ingest benchmark: sustained events/s through ``POST /api/v1/analytics/event/batch``
(50 events per request, realistic user agents, many concurrent clients, uvicorn workers
= cores) next to raw ``copy_records_to_table`` of the same rows on the same database;
then ack latency p50/p99 at half the measured peak; peak RSS per worker.

    python -m bench.ingest [--seconds 15] [--clients 64] [--workers 2] [--queue]

``--queue`` adds queue mode (``INGEST_QUEUE=redis``) with 1, 2 and 4 ``footfall
writer`` processes next to the direct group commit (``bench/ingest_queue.py``).

Prints a Markdown table (the README keeps the latest one). The load generator runs on
the same machine and competes for its cores: the HTTP figure is a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson

from bench.common import RawHTTP, Server, fresh_database, table
from db.migrate import migrate
from db.pool import create_pool
from db.writer import EVENT_COLUMNS

UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
]
PAGES = ["/", "/pricing", "/blog", "/blog/post-1", "/docs", "/docs/install", "/signup", "/about"]
REFS = [
    None,
    None,
    "https://www.google.com/search?q=x",
    "https://t.co/abc",
    "https://news.ycombinator.com/",
]
SITE = "bench-ingest"


MARK = b"RRRRRRRRRRRR"  # replaced per request by a counter: every event id is unique


def unique(body: bytes, counter: int) -> bytes:
    """The body with fresh event ids (and a fresh session) for request ``counter``."""
    return body.replace(MARK, b"%012x" % counter)


def batch_body(rng: random.Random, n: int = 50) -> bytes:
    """A tracker batch; ids/session contain ``MARK`` — send ``unique(body, k)``."""
    now = datetime.now(UTC)
    visitor = uuid.UUID(int=rng.getrandbits(128)).hex[:18]
    session = uuid.UUID(int=rng.getrandbits(128)).hex[:6] + MARK.decode()
    ua = rng.choice(UAS)
    events = [
        {
            "id": f"{rng.getrandbits(32):08x}-{i:04x}-4000-8000-{MARK.decode()}",
            "website_id": SITE,
            "visitor_id": visitor,
            "session_id": session,
            "event_type": "pageview" if rng.random() < 0.9 else "signup",
            "page": rng.choice(PAGES),
            "referrer": rng.choice(REFS),
            "user_agent": ua,
            "time_on_page": 0,
            "timestamp": (now - timedelta(seconds=n - i)).isoformat(),
            "utm_source": None,
            "utm_medium": None,
            "utm_campaign": None,
        }  # fmt: skip
        for i in range(n)
    ]
    return orjson.dumps({"siteId": SITE, "domain": "bench.example", "events": events})


def copy_rows(rng: random.Random, n: int) -> list[tuple[object, ...]]:
    now = datetime.now(UTC)
    rows = []
    for i in range(n):
        row = {c: None for c in EVENT_COLUMNS}
        row.update(
            website_id="bench-copy", ts=now - timedelta(seconds=i), id=uuid.uuid4(),
            event_type="pageview", visitor_id=f"v{i // 50}", session_id=f"s{i // 50}",
            page=rng.choice(PAGES), referrer=rng.choice(REFS), browser="Chrome", os="Windows",
            device="desktop", time_on_page=0, received_at=now,
        )  # fmt: skip
        rows.append(tuple(row[c] for c in EVENT_COLUMNS))
    return rows


async def raw_copy(dsn: str, n: int) -> float:
    """Rows/s of copy_records_to_table into ``events``, 5,000 rows per COPY."""
    rows = copy_rows(random.Random(1), n)
    pool = await create_pool(dsn, max_size=2, statement_timeout=600)
    t0 = time.perf_counter()
    async with pool.acquire() as conn:
        for i in range(0, n, 5000):
            await conn.copy_records_to_table("events", records=rows[i : i + 5000],
                                             columns=EVENT_COLUMNS)  # fmt: skip
    elapsed = time.perf_counter() - t0
    await pool.close()
    return n / elapsed


_REQUESTS = iter(range(1, 2**46))  # request counter shared by every run in this process


async def saturate(url: str, seconds: float, clients: int, server: Server) -> tuple[float, float]:
    """Closed-loop load: events/s acknowledged, and the peak worker RSS (MB)."""
    rng = random.Random(2)
    bodies = [batch_body(rng) for _ in range(400)]
    acked = 0
    peak_rss = 0.0
    stop = time.perf_counter() + seconds

    async def worker(k: int) -> None:
        nonlocal acked
        conn = RawHTTP("127.0.0.1", server.port)
        i = k
        while time.perf_counter() < stop:
            body = unique(bodies[i % len(bodies)], next(_REQUESTS))
            i += clients
            if await conn.post("/api/v1/analytics/event/batch", body) == 201:
                acked += 50
        await conn.close()

    async def sample_rss() -> None:
        nonlocal peak_rss
        while time.perf_counter() < stop:
            peak_rss = max([peak_rss, *server.worker_rss_mb()])
            await asyncio.sleep(0.5)

    t0 = time.perf_counter()
    await asyncio.gather(sample_rss(), *(worker(k) for k in range(clients)))
    elapsed = time.perf_counter() - t0
    return acked / elapsed, peak_rss


async def paced(port: int, events_per_second: float, seconds: float) -> tuple[float, float]:
    """Open-loop load at a fixed rate over a pool of raw keep-alive connections (one
    request in flight per connection, a new connection when all are busy): ack latency
    p50 and p99 (ms), measured from the moment each request was due."""
    rng = random.Random(3)
    bodies = [batch_body(rng) for _ in range(200)]
    interval = 50 / events_per_second
    latencies: list[float] = []
    idle: list[RawHTTP] = []
    opened: list[RawHTTP] = []

    async def one(body: bytes, due: float) -> None:
        conn = idle.pop() if idle else RawHTTP("127.0.0.1", port)
        if conn not in opened:
            opened.append(conn)
        status = await conn.post("/api/v1/analytics/event/batch", body)
        if status == 201:
            latencies.append((time.perf_counter() - due) * 1000)
        idle.append(conn)

    tasks = []
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < seconds:
        due = start + n * interval
        tasks.append(
            asyncio.create_task(one(unique(bodies[n % len(bodies)], next(_REQUESTS)), due))
        )
        n += 1
        await asyncio.sleep(max(0.0, start + n * interval - time.perf_counter()))
    await asyncio.gather(*tasks)
    for conn in opened:
        await conn.close()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return statistics.median(latencies), p99


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--copy-rows", type=int, default=200_000)
    ap.add_argument("--queue", action="store_true", help="also queue mode, 1/2/4 writers")
    args = ap.parse_args()
    dsn = await fresh_database("footfall_bench_ingest")
    conn = await asyncpg.connect(dsn)
    await migrate(conn, timescale=False)
    await conn.execute("INSERT INTO websites (id, domain) VALUES ($1, 'bench.example'),"
                       " ('bench-copy', 'copy.example')", SITE)  # fmt: skip
    await conn.close()
    copy_rate = await raw_copy(dsn, args.copy_rows)
    env = {
        "DATABASE_URL": dsn,
        "WORKER_COUNT": str(args.workers),
        "RATE_LIMIT_IP_PER_MINUTE": "0",
        "RATE_LIMIT_WEBSITE_PER_MINUTE": "0",
    }
    with Server(env) as server:
        await saturate(server.url, 3, args.clients, server)  # warm-up
        http_rate, rss = await saturate(server.url, args.seconds, args.clients, server)
        p50, p99 = await paced(server.port, http_rate / 2, min(args.seconds, 10))
    rows = [
        ["raw copy_records_to_table (5,000 rows/COPY, 1 connection)", f"{copy_rate:,.0f}", "", "", ""],
        [f"HTTP /event/batch, 50 ev/req, {args.clients} clients, {args.workers} workers",
         f"{http_rate:,.0f}", f"{http_rate / copy_rate:.2f}", "", f"{rss:.0f}"],
        [f"HTTP at half peak ({http_rate / 2:,.0f} ev/s)", "", "", f"{p50:.1f} / {p99:.1f}", ""],
    ]  # fmt: skip
    print(
        table(
            ["path", "events/s", "× raw COPY", "ack p50 / p99 (ms)", "peak RSS/worker (MB)"], rows
        )
    )
    print("\ntargets: HTTP ≥ 0.4 × raw COPY; p99 ≤ 100 ms at half peak; RSS ≤ 250 MB per worker")
    if args.queue:
        from bench.ingest_queue import queue_rows

        qrows: list[list[object]] = [
            ["direct group commit (no queue)", f"{http_rate:,.0f}", f"{http_rate:,.0f}", "", "", ""]
        ]
        qrows += await queue_rows(dsn, args.seconds, args.clients, args.workers, saturate)
        headers = ["ingest", "HTTP acked ev/s", "committed ev/s (under load)",
                   "drain ev/s (API idle)", "backlog after load (entries)",
                   "CPU % machine / api / writers / redis / loadgen"]  # fmt: skip
        print()
        print(table(headers, qrows))
        print(
            f"(CPU: % of one core over the loaded window; the machine has {os.cpu_count()} cores)"
        )


if __name__ == "__main__":
    asyncio.run(main())
