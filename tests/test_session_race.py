"""Server-assigned sessions under parallel requests (metrics.md "Events, visitors,
sessions"): events of one visitor that arrive at the same time without ``session_id``
share ONE session, with a visitor id and cookieless (hash of IP + User-Agent); the
30-minute rule on event times still splits them. Plus the claim registry on its own:
two "workers" sharing Redis, the in-process fallback, and a Redis outage."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from resolvers.session_claims import NewSession, SessionClaims, claims_of
from tests.conftest import make_website
from tests.test_write_path import CHROME_WIN, iso

PARALLEL = 10
GAP = timedelta(minutes=30)


async def _post_parallel(client: httpx.AsyncClient, events: list[dict[str, Any]]) -> None:
    replies = await asyncio.gather(
        *(client.post("/api/v1/analytics/event", json=ev, headers={"User-Agent": CHROME_WIN})
          for ev in events)
    )  # fmt: skip
    assert [r.status_code for r in replies] == [201] * len(events), [r.text for r in replies]


async def _sessions(pool: asyncpg.Pool, site: str) -> tuple[int, set[str], int]:
    """(rows in ``sessions``, distinct ``events.session_id``, stored events) of ``site``."""
    n_sessions = await pool.fetchval("SELECT count(*) FROM sessions WHERE website_id = $1", site)
    rows = await pool.fetch("SELECT session_id FROM events WHERE website_id = $1", site)
    return int(n_sessions), {r["session_id"] for r in rows}, len(rows)


async def test_parallel_events_of_one_visitor_share_one_session(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool
) -> None:
    site = await make_website(client, admin_headers)
    now = iso(datetime.now(UTC))
    events = [
        {"website_id": site, "visitor_id": "par2", "page": f"/p{i}", "timestamp": now}
        for i in range(PARALLEL)
    ]
    await _post_parallel(client, events)
    n_sessions, session_ids, stored = await _sessions(pool, site)
    assert stored == PARALLEL
    assert (n_sessions, len(session_ids)) == (1, 1), session_ids


async def test_parallel_cookieless_events_share_one_session(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool
) -> None:
    site = await make_website(client, admin_headers)
    events = [{"website_id": site, "page": f"/c{i}"} for i in range(PARALLEL)]
    await _post_parallel(client, events)
    n_sessions, session_ids, stored = await _sessions(pool, site)
    assert stored == PARALLEL
    visitors = await pool.fetch(
        "SELECT DISTINCT visitor_id FROM events WHERE website_id = $1", site
    )
    assert len(visitors) == 1 and visitors[0]["visitor_id"].startswith("h")
    assert (n_sessions, len(session_ids)) == (1, 1), session_ids


async def test_parallel_visitors_keep_their_own_sessions(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool
) -> None:
    site = await make_website(client, admin_headers)
    events = [
        {"website_id": site, "visitor_id": f"v{i % 3}", "page": f"/p{i}"} for i in range(3 * 4)
    ]
    await _post_parallel(client, events)
    rows = await pool.fetch(
        "SELECT visitor_id, count(DISTINCT session_id) AS n FROM events WHERE website_id = $1 "
        "GROUP BY visitor_id",
        site,
    )
    assert {r["visitor_id"]: r["n"] for r in rows} == {"v0": 1, "v1": 1, "v2": 1}
    assert await pool.fetchval("SELECT count(*) FROM sessions WHERE website_id = $1", site) == 3


async def test_parallel_events_far_apart_in_time_stay_separate_sessions(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool
) -> None:
    """The 30-minute rule is on event times: two parallel groups 40 minutes apart are two
    sessions, each group one."""
    site = await make_website(client, admin_headers)
    now = datetime.now(UTC)
    events = [
        {"website_id": site, "visitor_id": "far", "page": f"/f{i}",
         "timestamp": iso(now - timedelta(minutes=40 if i % 2 else 0, seconds=i))}
        for i in range(PARALLEL)
    ]  # fmt: skip
    await _post_parallel(client, events)
    rows = await pool.fetch(
        "SELECT page, session_id FROM events WHERE website_id = $1 ORDER BY page", site
    )
    by_group: dict[int, set[str]] = {0: set(), 1: set()}
    for r in rows:
        by_group[int(r["page"][2:]) % 2].add(r["session_id"])
    assert len(by_group[0]) == len(by_group[1]) == 1
    assert by_group[0] != by_group[1]
    assert await pool.fetchval("SELECT count(*) FROM sessions WHERE website_id = $1", site) == 2


async def test_live_session_in_database_is_continued(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool
) -> None:
    site = await make_website(client, admin_headers)
    first = {"website_id": site, "visitor_id": "cont", "page": "/first"}
    r = await client.post("/api/v1/analytics/event", json=first)
    assert r.status_code == 201, r.text
    await _post_parallel(
        client, [{"website_id": site, "visitor_id": "cont", "page": f"/n{i}"} for i in range(5)]
    )
    n_sessions, session_ids, stored = await _sessions(pool, site)
    assert (n_sessions, len(session_ids), stored) == (1, 1, 6)


# ----------------------------------------------------------------- the claim registry


def _new(visitor: str, at: datetime, minutes: float = 0) -> NewSession:
    return NewSession(visitor, uuid.uuid4().hex, at, at + timedelta(minutes=minutes))


async def test_two_workers_sharing_redis_agree(redis_url: str) -> None:
    """Two registries on separate clients (as in two uvicorn workers) claim once."""
    ns = f"fftest:{uuid.uuid4().hex[:8]}"
    clients = [aioredis.from_url(redis_url), aioredis.from_url(redis_url)]
    try:
        workers = [SessionClaims(c, ns) for c in clients]
        at = datetime.now(UTC)
        results = await asyncio.gather(
            *(workers[i % 2].resolve("w", [_new("v", at)], GAP) for i in range(PARALLEL))
        )
        assert len({r[0] for r in results}) == 1
        # 40 minutes later (event time) is another session; 10 minutes later is the same.
        later = await workers[0].resolve("w", [_new("v", at + timedelta(minutes=40))], GAP)
        assert later != results[0]
        again = await workers[1].resolve("w", [_new("v", at + timedelta(minutes=50))], GAP)
        assert again == later
        # Back to the first time: the first session still wins (no arrival-order flip).
        back = await workers[1].resolve("w", [_new("v", at + timedelta(minutes=5))], GAP)
        assert back == results[0]
        # Another website or visitor never shares it.
        other = await workers[0].resolve("w2", [_new("v", at)], GAP)
        assert other[0] not in (results[0][0], later[0])
    finally:
        for c in clients:
            await c.aclose()


async def test_in_process_claims_agree_without_redis() -> None:
    claims = SessionClaims(None)
    at = datetime.now(UTC)
    results = await asyncio.gather(*(claims.resolve("w", [_new("v", at)], GAP) for _ in range(8)))
    assert len({r[0] for r in results}) == 1
    # A run that overlaps within the gap joins; a disjoint one starts anew.
    joined, apart = await claims.resolve(
        "w", [_new("v", at - timedelta(minutes=20), 5), _new("v", at + timedelta(hours=2))], GAP
    )
    assert joined == results[0][0] and apart != joined
    assert await claims.resolve("w", [_new("v", at + timedelta(minutes=1))], GAP) == [joined]
    assert await claims.resolve("w2", [_new("v", at)], GAP) != [joined]


async def test_app_claims_are_shared_through_redis(app: Any) -> None:
    """The app's registry uses the configured Redis, namespaced per deployment."""
    claims = claims_of(app.state.runtime)
    assert claims.using_redis and claims.namespace.startswith("ff:")


async def test_redis_outage_degrades_to_process_memory(caplog: pytest.LogCaptureFixture) -> None:
    """An unreachable Redis never fails ingest: claims fall back to this process's
    memory (still one session per visitor here) and the outage is logged once."""
    dead = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    try:
        claims = SessionClaims(dead, "fftest:dead")
        at = datetime.now(UTC)
        with caplog.at_level(logging.WARNING, logger="footfall.session_claims"):
            results = await asyncio.gather(
                *(claims.resolve("w", [_new("v", at)], GAP) for _ in range(5))
            )
            await claims.resolve("w", [_new("v", at)], GAP)
        assert len({r[0] for r in results}) == 1
        assert len([r for r in caplog.records if "Redis" in r.getMessage()]) == 1
    finally:
        await dead.aclose()
