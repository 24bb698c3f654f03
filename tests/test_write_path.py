"""The write path end to end: the Seentics tracker payload → rows, sessions, enrichment."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from tests.conftest import gql, make_website

IMPORT_ONE = """mutation($i: ImportEventsInput!) { importEvents(input: $i) {
  accepted userErrors { field message } } }"""

CHROME_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def tracker_event(site: str, **over: object) -> dict[str, object]:
    """Exactly the field set tracker.js v1.0.2 sends for a page view (reference §8.1)."""
    ev: dict[str, object] = {
        "website_id": site,
        "visitor_id": "lq2x8k3z9abcdefgh",
        "session_id": "lq2x8k4a1ijklmnop",
        "event_type": "pageview",
        "page": "/pricing",
        "referrer": "https://www.google.com/search?q=footfall",
        "user_agent": CHROME_WIN,
        "time_on_page": 0,
        "timestamp": iso(datetime.now(UTC)),
        "utm_source": None,
        "utm_medium": None,
        "utm_campaign": None,
        "utm_term": None,
        "utm_content": None,
    }
    ev.update(over)
    return ev


async def test_tracker_batch_round_trip(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool
) -> None:
    site = await make_website(client, admin_headers, domain="shop.example")
    now = datetime.now(UTC)
    events = [
        tracker_event(site, page="/", timestamp=iso(now - timedelta(minutes=3))),
        tracker_event(
            site,
            page="/pricing",
            referrer="https://www.shop.example/",
            timestamp=iso(now - timedelta(minutes=2)),
        ),  # fmt: skip
        {  # a custom event as tracker.js sends it (no UTM, no time_on_page)
            "website_id": site,
            "visitor_id": "lq2x8k3z9abcdefgh",
            "session_id": "lq2x8k4a1ijklmnop",
            "event_type": "signup",
            "page": "/pricing",
            "referrer": None,
            "user_agent": CHROME_WIN,
            "properties": {"plan": "pro"},
            "timestamp": iso(now - timedelta(minutes=1)),
        },  # fmt: skip
    ]
    r = await client.post(
        "/api/v1/analytics/event/batch",
        json={"siteId": site, "domain": "shop.example", "events": events},
        headers={"CF-IPCountry": "DE"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"status", "events_count", "processed_at"}
    assert body["status"] == "accepted" and body["events_count"] == 3

    rows = await pool.fetch("SELECT * FROM events WHERE website_id = $1 ORDER BY ts", site)
    assert [r["page"] for r in rows] == ["/", "/pricing", "/pricing"]
    first = rows[0]
    assert first["referrer_host"] == "google.com"
    assert rows[1]["referrer_host"] is None  # own domain counts as no referrer
    assert first["browser"] == "Chrome" and first["os"] == "Windows"
    assert first["device"] == "desktop" and first["country"] == "DE"
    assert rows[2]["event_type"] == "signup" and rows[2]["properties"] == {"plan": "pro"}

    s = await pool.fetchrow("SELECT * FROM sessions WHERE website_id = $1", site)
    assert s["session_id"] == "lq2x8k4a1ijklmnop"
    assert s["entry_page"] == "/" and s["exit_page"] == "/pricing"
    assert s["pageviews"] == 2 and s["events"] == 1
    assert s["referrer_host"] == "google.com"
    assert (s["last_seen"] - s["started_at"]).total_seconds() == 120


async def test_single_event_returns_real_id(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool
) -> None:
    site = await make_website(client, admin_headers)
    r = await client.post("/api/v1/analytics/event", json=tracker_event(site, user_agent=IPHONE))
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"status", "event_id", "visitor_id", "session_id"}
    stored = await pool.fetchrow("SELECT * FROM events WHERE id = $1", uuid.UUID(body["event_id"]))
    assert stored is not None and stored["website_id"] == site
    assert stored["device"] == "mobile" and stored["os"] == "iOS"
    assert stored["browser"] == "Safari"  # not ua-parser's "Mobile Safari": device says that


async def test_out_of_order_arrival_keeps_earliest_entry_page(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool
) -> None:
    site = await make_website(client, admin_headers)
    now = datetime.now(UTC)
    late = tracker_event(site, page="/second", referrer=None, timestamp=iso(now))
    early = tracker_event(site, page="/first", timestamp=iso(now - timedelta(minutes=5)))
    for ev in (late, early):  # the earlier event arrives last
        r = await client.post(
            "/api/v1/analytics/event/batch", json={"siteId": site, "events": [ev]}
        )
        assert r.status_code == 201
    s = await pool.fetchrow("SELECT * FROM sessions WHERE website_id = $1", site)
    assert s["entry_page"] == "/first" and s["exit_page"] == "/second"
    assert s["referrer_host"] == "google.com"
    assert s["pageviews"] == 2


async def test_entry_and_exit_page_ties_do_not_depend_on_arrival_order(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """Two page views of a session at the same time: entry = the smaller event id, exit =
    the larger (the order one batch gives), whichever request arrives first."""
    site = await make_website(client, admin_headers)
    at = "2026-09-14T10:00:00Z"
    # per session (small id → /x, big id → /y); s1: the big id arrives first, s2: the small
    sessions = {
        "s1": ("00000000-0000-4000-8000-000000000001", "ffffffff-ffff-4fff-bfff-ffffffffff01"),
        "s2": ("00000000-0000-4000-8000-000000000002", "ffffffff-ffff-4fff-bfff-ffffffffff02"),
    }
    for session, (small, big) in sessions.items():
        views = [(small, "/x"), (big, "/y")]
        for event_id, page in views[::-1] if session == "s1" else views:
            event = {"id": event_id, "visitorId": session, "sessionId": session, "page": page,
                     "timestamp": at}  # fmt: skip
            res = await gql(client, IMPORT_ONE, {"i": {"websiteId": site, "events": [event]}},
                            admin_headers)  # fmt: skip
            assert res["data"]["importEvents"]["userErrors"] == [], res
    query = """query($id: ID!) { website(id: $id) { stats(range: {from: "2026-09-14T00:00:00Z",
      to: "2026-09-15T00:00:00Z"}) { entry: breakdown(dimension: ENTRY_PAGE) { rows { value visits } }
      exit: breakdown(dimension: EXIT_PAGE) { rows { value visits } } } } }"""
    stats = (await gql(client, query, {"id": site}, admin_headers))["data"]["website"]["stats"]
    assert stats["entry"]["rows"] == [{"value": "/x", "visits": 2}]
    assert stats["exit"]["rows"] == [{"value": "/y", "visits": 2}]


async def test_resent_event_is_not_counted_twice(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool
) -> None:
    site = await make_website(client, admin_headers)
    ev = tracker_event(site, id=str(uuid.uuid4()))
    for _ in range(3):
        r = await client.post(
            "/api/v1/analytics/event/batch", json={"siteId": site, "events": [ev]}
        )
        assert r.status_code == 201
    assert await pool.fetchval("SELECT count(*) FROM events WHERE website_id = $1", site) == 1
    assert await pool.fetchval("SELECT pageviews FROM sessions WHERE website_id = $1", site) == 1


async def test_resent_event_without_usable_time_is_not_counted_twice(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool
) -> None:
    """The server picks the receive time when none (or one outside the skew) is sent, so
    each copy of a resent event gets another time: the id alone must still dedupe."""
    site = await make_website(client, admin_headers)
    no_time, stale = str(uuid.uuid4()), str(uuid.uuid4())
    ev = tracker_event(site, id=no_time)
    del ev["timestamp"]
    old = tracker_event(site, id=stale, page="/old",
                        timestamp=iso(datetime.now(UTC) - timedelta(days=3)))  # fmt: skip
    for _ in range(2):
        r = await client.post(  # the same batch twice, and each event twice in a batch
            "/api/v1/analytics/event/batch", json={"siteId": site, "events": [ev, old, ev, old]}
        )
        assert r.status_code == 201, r.text
        assert r.json()["events_count"] == 2  # stored events (already stored the 2nd time)
    mutation = """mutation($in: TrackEventsInput!) { trackEvents(input: $in) { accepted } }"""
    r = await client.post("/graphql", headers=admin_headers, json={"query": mutation, "variables": {
        "in": {"websiteId": site, "events": [{"id": no_time, "visitorId": "lq2x8k3z9abcdefgh",
                                              "page": "/pricing"}]}}})  # fmt: skip
    assert r.status_code == 200 and "errors" not in r.json(), r.text
    ids = await pool.fetch("SELECT id::text AS id FROM events WHERE website_id = $1", site)
    assert sorted(r["id"] for r in ids) == sorted([no_time, stale])
    assert await pool.fetchval("SELECT sum(pageviews) FROM sessions WHERE website_id = $1", site) == 2


async def test_unknown_website_is_refused_and_nothing_stored(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    r = await client.post(
        "/api/v1/analytics/event/batch",
        json={"siteId": "no-such-site", "events": [tracker_event("no-such-site")]},
    )
    assert r.status_code == 404
    assert "no-such-site" in r.json()["error"]
    assert await pool.fetchval("SELECT count(*) FROM events WHERE website_id = 'no-such-site'") == 0


async def test_cookieless_visitor_and_server_sessions(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool
) -> None:
    site = await make_website(client, admin_headers)
    now = datetime.now(UTC)

    def ev(minutes_ago: float, page: str) -> dict[str, object]:
        e = tracker_event(site, page=page, timestamp=iso(now - timedelta(minutes=minutes_ago)))
        del e["visitor_id"], e["session_id"]
        return e

    # 0, 10 and 25 minutes after the first: one session; 70 minutes later: a new one.
    for batch in ([ev(100, "/a")], [ev(90, "/b"), ev(75, "/c")], [ev(5, "/d")]):
        r = await client.post(
            "/api/v1/analytics/event/batch", json={"siteId": site, "events": batch}
        )
        assert r.status_code == 201, r.text
    rows = await pool.fetch(
        "SELECT visitor_id, session_id, page FROM events WHERE website_id = $1 ORDER BY ts", site
    )
    assert len({r["visitor_id"] for r in rows}) == 1
    assert rows[0]["visitor_id"].startswith("h")
    sessions = [r["session_id"] for r in rows]
    assert sessions[0] == sessions[1] == sessions[2] != sessions[3]
