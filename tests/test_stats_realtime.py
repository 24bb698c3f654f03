"""Realtime (query and graphql-transport-ws subscription) and the raw event list."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from graph.app import create_app
from graph.settings import Settings
from tests.conftest import gql, make_website, token
from tests.faults.realtime_client import next_realtime, subscribe
from tests.reference import metrics_model as model
from tests.stats_support import import_events, iso

REALTIME = """query($id: ID!) { website(id: $id) { realtime {
  visitors pageviews topPages(limit: 3) { value visitors pageviews share } } } }"""


def _event(site: str, minutes_ago: float, visitor: str, page: str, kind: str = "pageview",
           session: str | None = None) -> dict[str, Any]:  # fmt: skip
    return {"id": str(uuid.uuid4()), "website_id": site, "visitor_id": visitor,
            "session_id": session or f"s-{visitor}", "event_type": kind, "page": page,
            "timestamp": iso(datetime.now(UTC) - timedelta(minutes=minutes_ago))}  # fmt: skip


async def test_realtime_matches_model(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    site = await make_website(client, admin_headers, domain="live.example")
    events = [
        _event(site, 1, "a", "/"), _event(site, 2, "a", "/pricing"), _event(site, 1.5, "b", "/"),
        _event(site, 3, "c", "/docs"), _event(site, 2.5, "c", "/", "signup"),
        _event(site, 4, "d", "/pricing"), _event(site, 9, "e", "/old"),  # outside the window
    ]  # fmt: skip
    await import_events(client, admin_headers, site, events)
    res = await gql(client, REALTIME, {"id": site}, admin_headers)
    expected = model.realtime(events, datetime.now(UTC), limit=3)
    got = res["data"]["website"]["realtime"]
    assert got["visitors"] == expected["visitors"] == 4
    assert got["pageviews"] == expected["pageviews"]
    assert [(r["value"], r["visitors"], r["pageviews"]) for r in got["topPages"]] == [
        (r["value"], r["visitors"], r["pageviews"]) for r in expected["topPages"]
    ]
    assert [r["share"] for r in got["topPages"]] == pytest.approx(
        [r["share"] for r in expected["topPages"]]
    )


async def test_events_connection_pages_newest_first(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    site = await make_website(client, admin_headers, domain="log.example")
    base = datetime(2026, 9, 10, 12, tzinfo=UTC)
    events = [{"id": str(uuid.UUID(int=i + 1)), "visitor_id": "v", "session_id": "s",
               "event_type": "pageview" if i % 3 else "click", "page": f"/p{i % 4}",
               "timestamp": iso(base + timedelta(minutes=i // 2))}  # equal times: id decides
              for i in range(11)]  # fmt: skip
    await import_events(client, admin_headers, site, events)
    query = """query($id: ID!, $a: String, $f: [FilterInput!]) { website(id: $id) {
      events(first: 4, after: $a, filters: $f) { edges { cursor node { id timestamp eventType page } }
      nodes { id } pageInfo { hasNextPage endCursor } } } }"""
    seen: list[str] = []
    after = None
    for _ in range(5):
        res = await gql(client, query, {"id": site, "a": after}, admin_headers)
        conn = res["data"]["website"]["events"]
        seen += [n["id"] for n in conn["nodes"]]
        assert conn["pageInfo"]["endCursor"] == (conn["edges"][-1]["cursor"] if conn["edges"]
                                                 else None)  # fmt: skip
        after = conn["pageInfo"]["endCursor"]
        if not conn["pageInfo"]["hasNextPage"]:
            break
    ordered = sorted(events, key=lambda e: (e["timestamp"], e["id"]), reverse=True)
    assert seen == [e["id"] for e in ordered]
    flt = [{"dimension": "PAGE", "operator": "IS", "values": ["/p1"]}]
    res = await gql(client, query, {"id": site, "a": None, "f": flt}, admin_headers)
    nodes = res["data"]["website"]["events"]["edges"]
    expected = [e for e in ordered if e["page"] == "/p1" and e["event_type"] == "pageview"]
    assert [n["node"]["id"] for n in nodes] == [e["id"] for e in expected][:4]


# --------------------------------------------------------------------------- subscription


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
async def server(settings: Settings) -> AsyncIterator[str]:
    """A real uvicorn server (in this loop) with the test settings; yields its base URL."""
    port = _free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="on", ws="websockets-sansio")  # fmt: skip
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    for _ in range(200):
        if srv.started:
            break
        await asyncio.sleep(0.02)
    assert srv.started, "uvicorn did not start"
    yield f"127.0.0.1:{port}"
    srv.should_exit = True
    await asyncio.wait_for(task, 10)


def _tracked(site: str, visitor: str) -> dict[str, Any]:
    return {"website_id": site, "visitor_id": visitor, "session_id": f"s-{visitor}",
            "event_type": "pageview", "page": "/live", "timestamp": iso(datetime.now(UTC))}  # fmt: skip


@pytest.mark.parametrize("in_payload", [False, True], ids=["token-in-url", "token-in-init"])
async def test_subscription_pushes_on_commit(
    server: str, client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings,
    in_payload: bool,
) -> None:  # fmt: skip
    """Pushed on commits of this server and of another process; the token in the URL or,
    as browsers send it, in the ``connection_init`` payload."""
    site = await make_website(client, admin_headers, domain="push.example")
    ws = await subscribe(server, site, token(settings, [site], "read"), in_payload=in_payload)
    try:
        assert await next_realtime(ws, 2) == {"visitors": 0, "pageviews": 0}
        async with httpx.AsyncClient(base_url=f"http://{server}") as http:
            r = await http.post("/api/v1/analytics/event", json=_tracked(site, "v1"))
            assert r.status_code == 201, r.text
        assert await next_realtime(ws, 2) == {"visitors": 1, "pageviews": 1}
        # Another process (the test app shares Redis with the server) commits: pushed too.
        r = await client.post("/api/v1/analytics/event", json=_tracked(site, "v2"))
        assert r.status_code == 201, r.text
        assert await next_realtime(ws, 2) == {"visitors": 2, "pageviews": 2}
    finally:
        await ws.close()


async def test_subscription_to_invisible_website_is_refused(
    server: str, client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    mine = await make_website(client, admin_headers, domain="mine.example")
    other = await make_website(client, admin_headers, domain="other.example")
    ws = await subscribe(server, other, token(settings, [mine], "read"))
    try:
        msg = orjson.loads(await asyncio.wait_for(ws.recv(), 2))
        assert msg["type"] == "error" or "errors" in msg.get("payload", {}), msg
    finally:
        await ws.close()


async def test_subscription_credentials_in_connection_init_and_other_origins(
    server: str, client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    """A bad token in ``connection_init`` closes the socket (4403); a dashboard served
    from another origin may subscribe (tokens, never cookies)."""
    site = await make_website(client, admin_headers, domain="payload.example")
    with pytest.raises(Exception) as refused:
        await subscribe(server, site, "not-a-token", in_payload=True)
    assert "4403" in str(refused.value), refused.value
    ws = await subscribe(server, site, token(settings, [site], "read"), in_payload=True,
                         origin="https://dashboard.elsewhere.example")  # fmt: skip
    try:
        assert await next_realtime(ws, 2) == {"visitors": 0, "pageviews": 0}
    finally:
        await ws.close()
