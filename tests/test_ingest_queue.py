"""Queue-mode ingest in process: settings, the row codec, the producer's back-pressure
and the consumer's commit/ack, claim and dead-letter paths (the real Redis of the test
run, keys under a unique prefix; the real database). Process-level faults are in
tests/faults/test_queue.py."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from db.ingest_consumer import StreamConsumer
from db.ingest_queue import (
    FIELD,
    GROUP,
    QueueFull,
    QueueWriter,
    decode_rows,
    encode_rows,
    ensure_groups,
    stream_keys,
)
from db.writer import EVENT_COLUMNS, BatchWriter
from graph.settings import Settings, SettingsError
from tests.conftest import make_website
from tests.faults.server import free_port
from tests.security_support import TRACK, other_app

# --------------------------------------------------------------------------- settings


def test_queue_settings_defaults() -> None:
    s = Settings.from_env({})
    assert (s.ingest_queue, s.ingest_streams, s.ingest_max_pending) == ("direct", 4, 1_000_000)
    assert s.ingest_claim_idle == 30.0


def test_queue_settings_are_parsed() -> None:
    s = Settings.from_env({
        "INGEST_QUEUE": "redis", "REDIS_URL": "redis://r:6379/0", "DATABASE_URL": "postgres://d",
        "INGEST_STREAMS": "8", "INGEST_MAX_PENDING": "5000", "INGEST_CLAIM_IDLE": "2m",
    })  # fmt: skip
    assert (s.ingest_queue, s.ingest_streams, s.ingest_max_pending) == ("redis", 8, 5000)
    assert s.ingest_claim_idle == 120.0


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"INGEST_QUEUE": "kafka"}, "INGEST_QUEUE"),
        ({"INGEST_QUEUE": "redis"}, "INGEST_QUEUE"),  # needs REDIS_URL and DATABASE_URL
        ({"INGEST_QUEUE": "redis", "REDIS_URL": "redis://r"}, "INGEST_QUEUE"),
        ({"INGEST_STREAMS": "0"}, "INGEST_STREAMS"),
        ({"INGEST_STREAMS": "many"}, "INGEST_STREAMS"),
        ({"INGEST_MAX_PENDING": "0"}, "INGEST_MAX_PENDING"),
        ({"INGEST_CLAIM_IDLE": "soon"}, "INGEST_CLAIM_IDLE"),
        ({"INGEST_CLAIM_IDLE": "0s"}, "INGEST_CLAIM_IDLE"),
    ],
)
def test_invalid_queue_settings_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env(env)


# --------------------------------------------------------------------------- codec


def _row(site: str, **over: Any) -> tuple[Any, ...]:
    now = datetime.now(UTC)
    values: dict[str, Any] = {c: None for c in EVENT_COLUMNS}
    values.update(website_id=site, ts=now - timedelta(seconds=1), id=uuid.uuid4(),
                  event_type="pageview", visitor_id="v1", session_id="s1", page="/",
                  time_on_page=3, properties={"plan": "pro", "n": [1, 2]}, received_at=now)  # fmt: skip
    values.update(over)
    return tuple(values[c] for c in EVENT_COLUMNS)


def test_rows_survive_the_codec() -> None:
    rows = [_row("site-a"), _row("site-a", properties=None, referrer="https://x.example/")]
    assert decode_rows(encode_rows(rows)) == rows


# --------------------------------------------------------------------------- streams


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[tuple[Any, str]]:
    """A Redis client and a key prefix of this test's own; keys are removed after."""
    client = aioredis.from_url(redis_url)
    prefix = f"test:ingest:{uuid.uuid4().hex[:8]}"
    try:
        yield client, prefix
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def _drain(consumer: StreamConsumer, client: Any, keys: list[str]) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        for _ in range(200):
            lengths = [await client.xlen(k) for k in keys]
            if not any(lengths):
                break
            await asyncio.sleep(0.05)
        assert not any(lengths), lengths
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def _consumer(client: Any, app: Any, prefix: str, name: str, **over: Any) -> StreamConsumer:
    writer = app.state.runtime.writer
    assert isinstance(writer, BatchWriter)
    options: dict[str, Any] = {"streams": 2, "batch_size": 3, "batch_timeout": 0.001,
                               "claim_idle": 30.0, "block": 0.05, "prefix": prefix}  # fmt: skip
    options.update(over)
    return StreamConsumer(client, writer, name=name, **options)


async def test_writer_commits_queued_rows_once(
    queue: tuple[Any, str], app: Any, client: httpx.AsyncClient,
    admin_headers: dict[str, str], pool: asyncpg.Pool,
) -> None:  # fmt: skip
    redis, prefix = queue
    site = await make_website(client, admin_headers, domain="queued.example")
    producer = QueueWriter(redis, streams=2, max_pending=1000, prefix=prefix)
    rows = [_row(site, session_id=f"s{i % 2}") for i in range(7)]
    for i in range(0, 7, 2):  # four requests, batch_size 3: several transactions
        assert (await producer.write(rows[i : i + 2])).stored == len(rows[i : i + 2])
    await producer.write(rows[:2])  # a resend of the same event ids
    assert producer.queue_depth == 5
    await _drain(_consumer(redis, app, prefix, "c1"), redis, producer.keys)
    assert await pool.fetchval("SELECT count(*) FROM events WHERE website_id = $1", site) == 7
    assert (
        await pool.fetchval("SELECT sum(pageviews) FROM sessions WHERE website_id = $1", site) == 7
    )  # the resend counted nothing twice
    described = await producer.describe()
    assert described["mode"] == "redis" and sum(described["streams"].values()) == 0


async def test_full_stream_refuses(queue: tuple[Any, str]) -> None:
    redis, prefix = queue
    producer = QueueWriter(redis, streams=1, max_pending=2, prefix=prefix)
    await producer.write([_row("full-site")])
    await producer.write([_row("full-site")])
    with pytest.raises(QueueFull) as info:
        await producer.write([_row("full-site")])
    assert info.value.retry_after >= 1
    assert await redis.xlen(producer.keys[0]) == 2


async def test_stale_entries_are_claimed_and_poison_is_dead_lettered(
    queue: tuple[Any, str], app: Any, client: httpx.AsyncClient,
    admin_headers: dict[str, str], pool: asyncpg.Pool,
) -> None:  # fmt: skip
    redis, prefix = queue
    site = await make_website(client, admin_headers, domain="claimed.example")
    keys = stream_keys(prefix, 1)
    await ensure_groups(redis, keys)
    good = [_row(site), _row(site)]
    await redis.xadd(keys[0], {FIELD: encode_rows(good)})
    await redis.xadd(keys[0], {FIELD: b"not json"})
    await redis.xadd(keys[0], {FIELD: encode_rows([_row(site, page=None)])})  # NOT NULL
    # a writer that read everything and died without acknowledging
    await redis.xreadgroup(GROUP, "dead", {keys[0]: ">"}, count=10)
    consumer = _consumer(redis, app, prefix, "alive", streams=1, claim_idle=0.1)
    await asyncio.sleep(0.15)
    await _drain(consumer, redis, keys)
    stored = await pool.fetch("SELECT id FROM events WHERE website_id = $1", site)
    assert sorted(r["id"] for r in stored) == sorted(r[2] for r in good)
    dead = await redis.xrange(f"{prefix}:dead")
    assert len(dead) == 2
    assert {b"undecodable" in d[1][b"error"] for d in dead} == {True, False}
    pending = await redis.xpending(keys[0], GROUP)
    assert pending["pending"] == 0


async def test_writer_waits_out_a_database_outage(
    queue: tuple[Any, str], settings: Settings, client: httpx.AsyncClient,
    admin_headers: dict[str, str], pool: asyncpg.Pool,
) -> None:  # fmt: skip
    """Rows stay queued (not acknowledged) while the database is unreachable, and are
    committed once it answers again."""
    redis, prefix = queue
    site = await make_website(client, admin_headers, domain="outage.example")
    broken = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
    writer = BatchWriter(broken, batch_size=100, batch_timeout=0)
    await broken.close()  # every acquire now fails like a lost database
    consumer = StreamConsumer(redis, writer, name="w", streams=1, batch_size=100,
                              batch_timeout=0, claim_idle=30, block=0.05, prefix=prefix)  # fmt: skip
    producer = QueueWriter(redis, streams=1, max_pending=100, prefix=prefix)
    await producer.write([_row(site)])
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await asyncio.sleep(0.3)
    assert await redis.xlen(producer.keys[0]) == 1  # kept, pending
    consumer.writer = BatchWriter(pool, batch_size=100, batch_timeout=0)  # back again
    for _ in range(60):
        if not await redis.xlen(producer.keys[0]):
            break
        await asyncio.sleep(0.05)
    stop.set()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(task, 3)
    assert await pool.fetchval("SELECT count(*) FROM events WHERE website_id = $1", site) == 1


async def test_tracking_names_the_queue_when_its_redis_is_down(
    settings: Settings, client: httpx.AsyncClient, admin_headers: dict[str, str],
    pool: asyncpg.Pool,
) -> None:  # fmt: skip
    """Queue mode with its Redis unreachable (nothing listens on the port) and the
    database up: tracking answers 503 naming the queue, not the database."""
    site = await make_website(client, admin_headers, domain="queue-down.example")
    down = f"redis://127.0.0.1:{free_port()}/0"
    async with other_app(settings, "198.51.100.77", ingest_queue="redis", redis_url=down) as (
        c, _,
    ):  # fmt: skip
        event = {"website_id": site, "visitor_id": "v1", "session_id": "s1", "page": "/"}
        r = await c.post("/api/v1/analytics/event", json=event)
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        assert r.json()["error"] == "Ingest queue (Redis) unavailable, retry later", r.text
        r = await c.post("/graphql", json={"query": TRACK, "variables": {
            "i": {"websiteId": site, "events": [{"page": "/"}]}}})  # fmt: skip
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        payload = r.json()["data"]["trackEvents"]
        assert payload["accepted"] == 0
        assert payload["userErrors"] == [{"field": None, "code": "UNAVAILABLE",
            "message": "ingest queue (Redis) unavailable, retry later"}]  # fmt: skip
    assert await pool.fetchval("SELECT count(*) FROM events WHERE website_id = $1", site) == 0
