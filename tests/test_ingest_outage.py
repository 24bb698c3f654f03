"""Tracking through a database outage. The API under test reaches the real PostgreSQL
through a TCP relay of this process (``tests.db_relay``) that the test closes; Redis is a
``redis-server`` of its own (the queue's stream names are fixed). Queue mode
(``INGEST_QUEUE=redis``) keeps accepting events for known websites and continues
visitors' sessions from Redis, and once the relay is open again and a writer has run,
the stored events, sessions and visitors are those the session rules give; direct mode
answers 503."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from db.ingest_consumer import StreamConsumer
from db.ingest_queue import stream_keys
from db.writer import BatchWriter
from graph.app import create_app
from graph.settings import Settings
from resolvers import ingest_fallback
from resolvers.ingest_fallback import fallback_of
from resolvers.session_claims import claims_of
from tests.conftest import gql, make_website
from tests.db_relay import Relay
from tests.faults.queue_support import AofRedis, own_aof_redis

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
WEBSITE_TTL = 0.2  # seconds; the outage below lasts several times as long
OUTAGE_RETRY = 0.3  # seconds; so that the outage is noticed more than once
CLAIM_TTL = 0.05  # seconds: claims of new sessions are gone long before the outage ends,
# as in an outage longer than a minute, so only the session records can continue them


@pytest.fixture
def own_redis() -> Iterator[AofRedis]:
    with own_aof_redis("footfall-outage-redis-") as server:
        yield server


@pytest.fixture
async def relay(database_url: str) -> AsyncIterator[Relay]:
    parts = urlsplit(database_url)
    relay = Relay((parts.hostname or "127.0.0.1", parts.port or 5432))
    await relay.open()
    try:
        yield relay
    finally:
        if relay.is_open:
            await relay.close()


@contextlib.asynccontextmanager
async def _api(settings: Settings, **over: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """An app of its own (``settings`` with ``over``) and an HTTP client for it."""
    app = create_app(dataclasses.replace(settings, **over))
    async with app.router.lifespan_context(app):
        app.state.runtime.websites.ttl = WEBSITE_TTL
        claims_of(app.state.runtime).ttl = CLAIM_TTL
        transport = httpx.ASGITransport(app=app, client=("198.51.100.20", 4321))
        async with httpx.AsyncClient(transport=transport, base_url="http://footfall.test") as c:
            yield c, app.state.runtime


@dataclasses.dataclass
class Tracker:
    """``POST /event`` of one page view ``minutes_ago`` minutes before ``now``
    (``visitor`` None: the server hashes IP and user agent)."""

    client: httpx.AsyncClient
    now: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))

    async def post(
        self, site: str, minutes_ago: float, visitor: str | None, session: str | None = None
    ) -> httpx.Response:
        ts = self.now - timedelta(minutes=minutes_ago)
        body: dict[str, Any] = {"website_id": site, "page": "/", "timestamp": ts.isoformat(),
                                "user_agent": UA, "id": str(uuid.uuid4())}  # fmt: skip
        if visitor is not None:
            body["visitor_id"] = visitor
        if session is not None:
            body["session_id"] = session
        return await self.client.post("/api/v1/analytics/event", json=body)

    async def session(
        self, site: str, minutes_ago: float, visitor: str | None, session: str | None = None
    ) -> str:
        """Track (201 required) and return the session the server assigned."""
        r = await self.post(site, minutes_ago, visitor, session)
        assert r.status_code == 201, (site, visitor, minutes_ago, r.status_code, r.text)
        sid: str = r.json()["session_id"]
        return sid


async def _run_writer(redis_url: str, pool: asyncpg.Pool, streams: int) -> None:
    """``footfall writer``'s consumer in process until the streams are empty."""
    redis = aioredis.from_url(redis_url)
    consumer = StreamConsumer(
        redis, BatchWriter(pool, batch_size=500, batch_timeout=0), name="outage-writer",
        streams=streams, batch_size=500, batch_timeout=0.001, claim_idle=30, block=0.05,
    )  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        for _ in range(200):
            lengths = [await redis.xlen(k) for k in stream_keys("footfall:ingest", streams)]
            if not any(lengths):
                break
            await asyncio.sleep(0.05)
        assert not any(lengths), f"the writer left {lengths} entries"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await redis.aclose()


async def _stored(pool: asyncpg.Pool, site: str) -> tuple[int, int, int, int]:
    """(events, sessions, visitors, page views counted in sessions) of ``site``."""
    row = await pool.fetchrow(
        """SELECT (SELECT count(*) FROM events WHERE website_id = $1) AS events,
                  (SELECT count(*) FROM sessions WHERE website_id = $1) AS sessions,
                  (SELECT count(DISTINCT visitor_id) FROM events WHERE website_id = $1) AS visitors,
                  (SELECT coalesce(sum(pageviews), 0) FROM sessions WHERE website_id = $1) AS pv""",
        site,
    )
    assert row is not None
    return row["events"], row["sessions"], row["visitors"], row["pv"]


async def test_queue_mode_tracks_through_a_database_outage(
    settings: Settings, client: httpx.AsyncClient, admin_headers: dict[str, str],
    pool: asyncpg.Pool, relay: Relay, own_redis: AofRedis, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(ingest_fallback, "OUTAGE_RETRY", OUTAGE_RETRY)
    site_a = await make_website(client, admin_headers, domain="outage-a.example")
    site_b = await make_website(client, admin_headers, domain="outage-b.example")
    site_c = await make_website(client, admin_headers, domain="outage-c.example")
    over = {"database_url": relay.dsn(settings.database_url or ""),
            "redis_url": own_redis.url, "ingest_queue": "redis"}  # fmt: skip
    async with _api(settings, **over) as (api, rt):
        streams = len(rt.writer.keys)
        track = Tracker(api)
        # Given: visitors tracked and committed before the outage
        s1 = await track.session(site_a, 40, "v1", "s1")
        s2 = await track.session(site_a, 12, "v2")
        s5 = await track.session(site_a, 11, "v5", "c5")
        s_hashed = await track.session(site_a, 9, None)
        s_b1 = await track.session(site_b, 8, "b1")
        await _run_writer(own_redis.url, pool, streams)
        rt.websites.forget(site_b)  # as a worker that never read site B from the database

        # When: PostgreSQL is unreachable for longer than the website cache lives
        await relay.close()
        await asyncio.sleep(WEBSITE_TTL * 2)
        # sessions continue, whether the client sends their id or not
        assert await track.session(site_a, 5, "v1", "s1") == s1
        assert await track.session(site_a, 4, "v1", "s1") == s1
        assert await track.session(site_a, 3, "v2") == s2
        assert await track.session(site_a, 2, "v5") == s5
        await asyncio.sleep(OUTAGE_RETRY * 2)  # the database is tried (and missed) again
        assert await track.session(site_a, 2, "v2") == s2
        assert await track.session(site_a, 1, None) == s_hashed
        assert await track.session(site_b, 1, "b1") == s_b1  # site B from Redis's copy
        s_b2 = await track.session(site_b, 1, "b2")
        # a new visitor, one request per event: 5 min apart, 75 min apart, 19 min apart
        v3 = [await track.session(site_a, ago, "v3") for ago in (100, 95, 20, 1)]
        assert v3[0] == v3[1] != v3[2] == v3[3]
        assert len({s1, s2, s5, s_hashed, v3[0], v3[2]}) == 6 and s_b2 != s_b1
        # a website this worker never read and Redis has no copy of: it cannot be told
        # apart from one that does not exist
        assert (await track.post(site_c, 1, "c1")).status_code == 503

        # Then: back, while the outage's events still wait for a writer
        await relay.open()
        await asyncio.sleep(OUTAGE_RETRY)
        assert await track.session(site_a, 0, "v3") == v3[3]
        await _run_writer(own_redis.url, pool, streams)

    # (events, sessions, visitors, page views of sessions): 4 before + 10 during + 1
    # after; sessions s1, v2's, c5, the hashed visitor's and v3's two
    assert await _stored(pool, site_a) == (15, 6, 5, 15)
    assert await _stored(pool, site_b) == (3, 2, 2, 3)
    assert await _stored(pool, site_c) == (0, 0, 0, 0)
    sessions = await pool.fetch(
        """SELECT visitor_id, session_id, count(*) AS n FROM events WHERE website_id = $1
           GROUP BY visitor_id, session_id""",
        site_a,
    )
    found = {(r["visitor_id"], r["session_id"]): r["n"] for r in sessions}
    assert {k: n for k, n in found.items() if k[0][0] == "v"} == {
        ("v1", s1): 3, ("v2", s2): 3, ("v5", s5): 2, ("v3", v3[0]): 2, ("v3", v3[2]): 3,
    }  # fmt: skip


async def test_direct_mode_answers_503_while_the_database_is_down(
    settings: Settings, client: httpx.AsyncClient, admin_headers: dict[str, str],
    relay: Relay,
) -> None:  # fmt: skip
    site = await make_website(client, admin_headers, domain="outage-direct.example")
    async with _api(settings, database_url=relay.dsn(settings.database_url or "")) as (api, _):
        track = Tracker(api)
        await track.session(site, 5, "d1", "ds1")
        await track.session(site, 4, "d2")
        await relay.close()
        assert (await track.post(site, 3, "d1", "ds1")).status_code == 503  # website cached
        await asyncio.sleep(WEBSITE_TTL * 2)
        assert (await track.post(site, 2, "d1", "ds1")).status_code == 503
        assert (await track.post(site, 1, "d2")).status_code == 503
        await relay.open()


async def test_copies_and_records_follow_changes_to_websites_and_visitors(
    settings: Settings, admin_headers: dict[str, str], own_redis: AofRedis
) -> None:
    """A created, changed or deleted website leaves no stale copy in Redis, an erased
    visitor no session to continue."""
    async with _api(settings, redis_url=own_redis.url, ingest_queue="redis") as (api, rt):
        fb, track = fallback_of(rt), Tracker(api)
        site = await make_website(api, admin_headers, domain="copies.example")
        assert (copy := await fb.load_copy(site)) is not None
        assert copy.domain == "copies.example"  # stored with the creation
        await fb.redis.delete(fb._key(site))
        first = await track.session(site, 3, "e1")
        assert await fb.load_copy(site) == copy  # and by a tracking read
        res = await gql(api, """mutation($i: UpdateWebsiteInput!) { updateWebsite(input: $i)
                                  { userErrors { message } } }""",
                        {"i": {"id": site, "domain": "moved.example"}}, admin_headers)  # fmt: skip
        assert res["data"]["updateWebsite"]["userErrors"] == []
        assert (copy := await fb.load_copy(site)) is not None
        assert copy.domain == "moved.example"  # replaced with the change
        # a tracking request that read the row before the change stores it late: ignored
        stale = dataclasses.replace(copy, domain="copies.example",
                                    updated_at=copy.updated_at - timedelta(seconds=1))  # fmt: skip
        await fb.save_copy(site, stale)
        assert (await fb.load_copy(site)) == copy
        assert await track.session(site, 2, "e1") == first

        res = await gql(api, """mutation($i: DeleteVisitorDataInput!) { deleteVisitorData(
                                  input: $i) { userErrors { message } } }""",
                        {"i": {"websiteId": site, "visitorId": "e1"}}, admin_headers)  # fmt: skip
        assert res["data"]["deleteVisitorData"]["userErrors"] == []
        await asyncio.sleep(CLAIM_TTL * 2)
        assert await track.session(site, 1, "e1") != first  # the erased session is over
        second = await track.session(site, 1, "e2")
        # erasing the website's data (REST privacy route) drops all its records
        r = await api.delete(f"/api/v1/privacy/delete/website/{site}", headers=admin_headers)
        assert r.status_code == 200, r.text
        await asyncio.sleep(CLAIM_TTL * 2)
        assert await track.session(site, 0, "e2") != second

        res = await gql(api, """mutation($i: DeleteWebsiteInput!) { deleteWebsite(input: $i)
                                  { userErrors { message } } }""",
                        {"i": {"id": site}}, admin_headers)  # fmt: skip
        assert res["data"]["deleteWebsite"]["userErrors"] == []
        assert await fb.load_copy(site) is None
        await fb.save_copy(site, copy)  # a read from before the deletion, stored late
        assert await fb.load_copy(site) is None  # the tombstone holds


@pytest.mark.parametrize("mode", ["direct", "redis"])
async def test_session_markers_do_not_keep_a_session_alive(
    settings: Settings, client: httpx.AsyncClient, admin_headers: dict[str, str],
    pool: asyncpg.Pool, own_redis: AofRedis, mode: str,
) -> None:  # fmt: skip
    """A page view 50 minutes ago, a ``session_end`` 25 minutes ago, a page view now: the
    last counted event is 50 minutes old, so a new session starts — in queue mode too,
    whose Redis records must not count the marker (metrics.md ignores it)."""
    site = await make_website(client, admin_headers, domain=f"markers-{mode}.example")

    async def post(api: httpx.AsyncClient, ago: int, event_type: str = "pageview") -> str:
        ts = datetime.now(UTC) - timedelta(minutes=ago)
        r = await api.post("/api/v1/analytics/event", json={
            "website_id": site, "page": "/", "timestamp": ts.isoformat(), "user_agent": UA,
            "id": str(uuid.uuid4()), "visitor_id": "marker-v", "event_type": event_type})  # fmt: skip
        assert r.status_code == 201, r.text
        session: str = r.json()["session_id"]
        return session

    async with _api(settings, redis_url=own_redis.url, ingest_queue=mode) as (api, rt):
        first = await post(api, 50)
        await post(api, 25, "session_end")
        if mode == "redis":
            await _run_writer(own_redis.url, pool, len(rt.writer.keys))
        assert await post(api, 0) != first
