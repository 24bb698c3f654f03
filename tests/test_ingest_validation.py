"""Every validation rule of the ingest doors: the error names the field (and the event
index) and nothing from the refused request is stored."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import gql, make_website
from tests.test_write_path import iso, tracker_event

BATCH = "/api/v1/analytics/event/batch"


async def count(pool: asyncpg.Pool, site: str) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM events WHERE website_id = $1", site))


@pytest.fixture
async def site(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> str:
    return await make_website(client, admin_headers, domain="valid.example")


BAD_EVENTS: list[tuple[dict[str, Any], str]] = [
    ({"id": "not-a-uuid"}, "events[1].id"),
    ({"id": 42}, "events[1].id"),
    ({"visitor_id": "v" * 256}, "events[1].visitor_id"),
    ({"session_id": ["x"]}, "events[1].session_id"),
    ({"event_type": "e" * 101}, "events[1].event_type"),
    ({"page": "not-a-url"}, "events[1].page"),
    ({"page": 7}, "events[1].page"),
    ({"timestamp": "yesterday"}, "events[1].timestamp"),
    ({"timestamp": 1700000000}, "events[1].timestamp"),
    ({"time_on_page": 1.5}, "events[1].time_on_page"),
    ({"time_on_page": -1}, "events[1].time_on_page"),
    ({"properties": [1, 2]}, "events[1].properties"),
    ({"properties": {"a": {"b": {"c": {"d": 1}}}}}, "events[1].properties"),
    ({"properties": {"k": "x" * 9000}}, "events[1].properties"),
    ({"properties": {f"k{i}": i for i in range(51)}}, "events[1].properties"),
    ({"country": "Germany"}, "events[1].country"),
    ({"device": "toaster"}, "events[1].device"),
    ({"referrer": "a\x00b"}, "events[1].referrer"),
    ({"page": "/a\x00b"}, "events[1].page"),
    ({"website_id": "other-site"}, "events[1].website_id"),
]


@pytest.mark.parametrize(("override", "field"), BAD_EVENTS)
async def test_bad_event_is_refused_with_its_field(
    client: httpx.AsyncClient, pool: asyncpg.Pool, site: str, override: dict[str, Any], field: str
) -> None:
    events = [tracker_event(site, page="/ok"), tracker_event(site, **override)]
    r = await client.post(BATCH, json={"siteId": site, "events": events})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["field"] == field
    assert field in body["error"]
    assert await count(pool, site) == 0  # the valid first event was not stored either


async def test_bad_event_in_graphql_is_a_user_error(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool, site: str
) -> None:
    res = await gql(
        client,
        """mutation($i: TrackEventsInput!) { trackEvents(input: $i) {
             accepted eventIds userErrors { field message code } } }""",
        {"i": {"websiteId": site, "events": [{"page": "/ok"}, {"page": "nope"}]}},
    )
    payload = res["data"]["trackEvents"]
    assert payload["accepted"] == 0
    assert payload["userErrors"][0]["field"] == ["events", "1", "page"]
    assert payload["userErrors"][0]["code"] == "INVALID"
    assert await count(pool, site) == 0


async def test_graphql_user_errors_name_the_inputs_own_fields(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool, site: str
) -> None:
    """Paths use the GraphQL input's names (camelCase ``eventType``, ``websiteId``,
    ``id``), not the tracker payload's (``event_type``, ``siteId``)."""
    track = """mutation($i: TrackEventsInput!) { trackEvents(input: $i) {
        userErrors { field code } } }"""
    res = await gql(client, track, {"i": {"websiteId": site, "events": [
        {"page": "/ok"}, {"page": "/ok", "eventType": "x" * 101}]}})  # fmt: skip
    assert res["data"]["trackEvents"]["userErrors"] == [
        {"field": ["events", "1", "eventType"], "code": "TOO_LONG"}]  # fmt: skip
    res = await gql(client, track, {"i": {"websiteId": "no-such-site", "events": [{}]}})
    assert res["data"]["trackEvents"]["userErrors"][0]["field"] == ["websiteId"]
    res = await gql(client, """mutation { deleteWebsite(input: {id: "no-such-site"}) {
        userErrors { field code } } }""", headers=admin_headers)  # fmt: skip
    assert res["data"]["deleteWebsite"]["userErrors"] == [{"field": ["id"], "code": "NOT_FOUND"}]
    assert await count(pool, site) == 0


async def test_explicit_null_arguments_take_their_defaults(
    client: httpx.AsyncClient, admin_headers: dict[str, str], site: str
) -> None:
    """graphql.md declares these arguments nullable with a default (``limit: Int = 10``)."""
    q = """query($id: ID!) { website(id: $id) {
      stats(range: {preset: LAST_7_DAYS}) { summary(compare: null) { visitors previous { visits } }
        breakdown(dimension: PAGE, limit: null, offset: null) { totalRows } }
      realtime { topPages(limit: null) { value } }
      events(first: null) { edges { cursor } }
      funnels(activeOnly: null) { id } } }"""
    res = await gql(client, q, {"id": site}, admin_headers)
    assert "errors" not in res, res
    stats = res["data"]["website"]["stats"]
    assert stats["summary"]["previous"] is None and stats["breakdown"]["totalRows"] == 0


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "Invalid batch event data"),
        (b"\xff\xfe\x00garbage", 400, "Invalid batch event data"),
        (b"[1, 2]", 400, "Invalid batch event data"),
        (b'{"siteId": "", "events": [{}]}', 400, "Missing required fields"),
        (b'{"siteId": "x", "events": []}', 400, "Missing required fields"),
        (b'{"siteId": "x", "events": "nope"}', 400, "Invalid batch event data"),
    ],
)
async def test_malformed_bodies(
    client: httpx.AsyncClient, body: bytes, status: int, needle: str
) -> None:
    r = await client.post(BATCH, content=body, headers={"content-type": "application/json"})
    assert r.status_code == status
    assert needle in r.json()["error"]


async def test_limits(client: httpx.AsyncClient, pool: asyncpg.Pool, site: str) -> None:
    too_many = [tracker_event(site) for _ in range(501)]
    r = await client.post(BATCH, json={"siteId": site, "events": too_many})
    assert r.status_code == 400 and r.json()["field"] == "events"
    huge = {"siteId": site, "events": [tracker_event(site, referrer="x" * (1_100_000))]}
    r = await client.post(BATCH, json=huge)
    assert r.status_code == 413
    assert await count(pool, site) == 0


async def test_truncation_rules(client: httpx.AsyncClient, pool: asyncpg.Pool, site: str) -> None:
    ev = tracker_event(site, referrer="https://ref.example/" + "r" * 5000, utm_source="u" * 400,
                       page="https://valid.example/landing?utm_campaign=spring&x=1#top")  # fmt: skip
    r = await client.post(BATCH, json={"siteId": site, "events": [ev]})
    assert r.status_code == 201
    row = await pool.fetchrow("SELECT * FROM events WHERE website_id = $1", site)
    assert len(row["referrer"]) == 2048 and len(row["utm_source"]) == 255
    assert row["page"] == "/landing" and row["utm_campaign"] == "spring"


async def test_utm_from_the_page_query_not_its_fragment(
    client: httpx.AsyncClient, pool: asyncpg.Pool, site: str
) -> None:
    pages = ["/a?utm_source=query#utm_medium=fragment", "/b#top?utm_source=fragment",
             "/c?utm_medium=&utm_term=t"]  # fmt: skip
    events = [tracker_event(site, id=str(uuid.uuid4()), page=p) for p in pages]
    r = await client.post(BATCH, json={"siteId": site, "events": events})
    assert r.status_code == 201
    got = {r["page"]: (r["utm_source"], r["utm_medium"], r["utm_term"]) for r in await pool.fetch(
        "SELECT page, utm_source, utm_medium, utm_term FROM events WHERE website_id = $1", site)}
    assert got == {"/a": ("query", None, None), "/b": (None, None, None), "/c": (None, None, "t")}


async def test_event_time_rules(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool, site: str
) -> None:
    now = datetime.now(UTC)
    inside = now - timedelta(hours=23)
    too_old = now - timedelta(days=3)
    future = now + timedelta(hours=1)
    events = [
        tracker_event(site, id=str(uuid.uuid4()), timestamp=iso(t))
        for t in (inside, too_old, future)
    ]
    r = await client.post(BATCH, json={"siteId": site, "events": events})
    assert r.status_code == 201
    rows = {str(r["id"]): r["ts"] for r in await pool.fetch(
        "SELECT id, ts FROM events WHERE website_id = $1", site)}  # fmt: skip
    assert abs((rows[events[0]["id"]] - inside).total_seconds()) < 0.001
    for ev in events[1:]:  # outside [received − 24 h, received + 5 min] → receive time
        assert abs((rows[ev["id"]] - now).total_seconds()) < 30
    # Imports keep any past time but refuse the future.
    q = """mutation($i: ImportEventsInput!) { importEvents(input: $i) {
             accepted userErrors { field code } } }"""
    old = {
        "websiteId": site,
        "events": [{"page": "/old", "timestamp": iso(now - timedelta(days=400))}],
    }
    res = await gql(client, q, {"i": old}, admin_headers)
    assert res["data"]["importEvents"]["accepted"] == 1
    fut = {"websiteId": site, "events": [{"page": "/f", "timestamp": iso(future)}]}
    res = await gql(client, q, {"i": fut}, admin_headers)
    assert res["data"]["importEvents"]["userErrors"][0]["field"] == ["events", "0", "timestamp"]


async def test_import_needs_write_scope(
    client: httpx.AsyncClient, settings: Any, pool: asyncpg.Pool, site: str
) -> None:
    from tests.conftest import token

    q = """mutation($i: ImportEventsInput!) { importEvents(input: $i) {
             accepted userErrors { code } } }"""
    variables = {"i": {"websiteId": site, "events": [{"page": "/x"}]}}
    read = {"Authorization": f"Bearer {token(settings, [site], 'read')}"}
    res = await gql(client, q, variables, read)
    assert res["data"]["importEvents"]["userErrors"][0]["code"] == "FORBIDDEN"
    res = await gql(client, q, variables)  # anonymous: the private site is "not found"
    assert res["data"]["importEvents"]["userErrors"][0]["code"] == "NOT_FOUND"
    assert await count(pool, site) == 0


async def test_bots_are_dropped_and_counted(
    client: httpx.AsyncClient, pool: asyncpg.Pool, site: str
) -> None:
    bot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    events = [tracker_event(site), tracker_event(site, user_agent=bot)]
    r = await client.post(BATCH, json={"siteId": site, "events": events})
    assert r.status_code == 201 and r.json()["events_count"] == 1
    assert await count(pool, site) == 1
    metrics = (await client.get("/metrics")).text
    assert "footfall_bot_events_dropped_total" in metrics


async def test_many_concurrent_requests_are_all_committed(
    client: httpx.AsyncClient, pool: asyncpg.Pool, site: str
) -> None:
    async def send(i: int) -> int:
        events = [tracker_event(site, id=str(uuid.uuid4()), session_id=f"s{i}") for _ in range(20)]
        r = await client.post(BATCH, json={"siteId": site, "events": events})
        assert r.status_code == 201
        return int(r.json()["events_count"])

    counts = await asyncio.gather(*(send(i) for i in range(50)))
    assert sum(counts) == 1000
    assert await count(pool, site) == 1000
    assert (
        await pool.fetchval("SELECT sum(pageviews) FROM sessions WHERE website_id = $1", site)
        == 1000
    )


async def test_single_event_route_names_its_own_fields(
    client: httpx.AsyncClient, pool: asyncpg.Pool, site: str
) -> None:
    """``POST /event`` has no ``events`` array and calls the website ``website_id``."""
    r = await client.post("/api/v1/analytics/event",
                          json={"website_id": site, "visitor_id": "v", "timestamp": "soon"})  # fmt: skip
    assert r.status_code == 400 and r.json()["field"] == "timestamp", r.text
    assert r.json()["error"].startswith("timestamp")
    r = await client.post("/api/v1/analytics/event",
                          json={"website_id": "no-such-site", "visitor_id": "v"})  # fmt: skip
    assert r.status_code == 404 and r.json()["field"] == "website_id", r.text
    assert await count(pool, site) == 0
