"""The session rollup (db/queries/stats_events_side.py ``rollup_las``) against the raw
path (``STATS_SESSION_ROLLUP=off``): the same requests over the same data give the same
answers, on traffic with sessions crossing local midnights and the range edges, a
session of several hours that started long before the range, sessions whose events
carry two visitors, ignored session markers, and in zones with DST and half-hour
offsets. The rollup path itself is checked against the independent model of
metrics.md by test_stats_model.py (it is the default)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from graph.settings import Settings
from tests.conftest import gql, make_website
from tests.reference.traffic import generate_traffic
from tests.security_support import other_app
from tests.stats_support import (
    BUCKET_FIELDS,
    ROW_FIELDS,
    SESSION_DIMENSIONS,
    SUMMARY_FIELDS,
    counting_reads,
    import_events,
    iso,
)

START = datetime(2026, 10, 20, tzinfo=UTC)
END = datetime(2026, 11, 6, tzinfo=UTC)  # across the end of DST in Europe and America
FROM = datetime(2026, 10, 24, 7, 30, tzinfo=UTC)
TO = datetime(2026, 11, 3, 18, 30, tzinfo=UTC)
INTERVALS = ("HOUR", "DAY", "WEEK", "MONTH")
DIMS = ("PAGE", *SESSION_DIMENSIONS)


def _query() -> str:
    series = "".join(f" {i.lower()}: timeseries(interval: {i}) {{ {BUCKET_FIELDS} }}"
                     for i in INTERVALS)  # fmt: skip
    dims = "".join(f" {d.lower()}: breakdown(dimension: {d}, limit: 50) {{ totalRows rows {{"
                   f" {ROW_FIELDS} }} }}" for d in DIMS)  # fmt: skip
    return (
        "query($id: ID!, $r: RangeInput!, $tz: String, $f: [FilterInput!]) {"
        " website(id: $id) { stats(range: $r, timezone: $tz, filters: $f) {"
        f" summary(compare: true) {{ {SUMMARY_FIELDS} previous {{ {SUMMARY_FIELDS} }} }}"
        f"{series}{dims} }} }} }}"
    )


def _extra_events(site: str) -> list[dict[str, Any]]:
    """A 9-hour session from long before FROM into the range; a session with two
    visitors (one of them also elsewhere); a session that only has markers in range."""
    def ev(visitor: str, session: str, at: datetime, page: str = "/long",
           kind: str = "pageview") -> dict[str, Any]:  # fmt: skip
        return {"id": str(uuid.uuid4()), "website_id": site, "visitor_id": visitor,
                "session_id": session, "event_type": kind, "page": page,
                "timestamp": iso(at), "country": "NZ", "browser": "Lynx"}  # fmt: skip

    long = [ev("long-v", "long-s", FROM - timedelta(hours=8) + timedelta(minutes=25 * i))
            for i in range(22)]  # fmt: skip
    mixed = [ev("mix-a", "mix-s", FROM + timedelta(hours=3), "/m1"),
             ev("mix-b", "mix-s", FROM + timedelta(hours=3, minutes=5), "/m2"),
             ev("mix-b", "mix-s", FROM + timedelta(hours=3, minutes=7), "/m2", "signup"),
             ev("mix-b", "other-s", FROM + timedelta(days=2), "/m3")]  # fmt: skip
    markers = [ev("mark-v", "mark-s", FROM + timedelta(hours=5), "/", "session_start")]
    return long + mixed + markers


async def _answers(client: httpx.AsyncClient, headers: dict[str, str], site: str,
                   tz: str, filters: list[dict[str, Any]] | None) -> Any:  # fmt: skip
    res = await gql(client, _query(), {"id": site, "r": {"from": iso(FROM), "to": iso(TO)},
                                       "tz": tz, "f": filters}, headers)  # fmt: skip
    assert "errors" not in res, res
    return res["data"]["website"]["stats"]


async def test_rollup_and_raw_paths_agree(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings,
    pool: asyncpg.Pool,
) -> None:  # fmt: skip
    site = await make_website(client, admin_headers, domain="rollup.example")
    events = generate_traffic(11, site, "rollup.example", START, END, n_visitors=120,
                              straddle=[FROM, TO], include_session_markers=True)  # fmt: skip
    await import_events(client, admin_headers, site, events + _extra_events(site))
    mixed = await pool.fetch("SELECT session_id FROM sessions WHERE website_id = $1"
                             " AND mixed_visitors", site)  # fmt: skip
    assert [r["session_id"] for r in mixed] == ["mix-s"]

    cases = [("UTC", None), ("Asia/Kolkata", None), ("America/New_York", None),
             ("Australia/Adelaide", None),
             ("Europe/Berlin", [{"dimension": "COUNTRY", "operator": "IS_NOT", "values": ["NZ"]}]),
             ("UTC", [{"dimension": "DEVICE", "operator": "IN", "values": ["mobile", "tablet"]},
                      {"dimension": "SOURCE", "operator": "CONTAINS", "values": ["o"]}])]  # fmt: skip
    async with other_app(settings, "10.7.7.7", stats_session_rollup=False) as (raw_client, raw):
        for tz, filters in cases:
            await app.state.runtime.cache.invalidate(site)  # both apps share Redis
            async with counting_reads(app) as fast:
                rolled = await _answers(client, admin_headers, site, tz, filters)
            await app.state.runtime.cache.invalidate(site)
            async with counting_reads(raw) as slow:
                plain = await _answers(raw_client, admin_headers, site, tz, filters)
            assert any("rs0 AS" in q for q in fast.ours), "the rollup path answered"
            assert slow.ours and not any("rs0 AS" in q for q in slow.ours), "the raw path did"
            assert rolled == plain, (tz, filters)
            assert rolled["summary"]["pageviews"] > 0 and rolled["day"]


async def test_writer_marks_sessions_with_two_visitors(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    site = f"mixed-{uuid.uuid4().hex[:8]}"
    await pool.execute("INSERT INTO websites (id, domain) VALUES ($1, 'mixed.example')", site)
    now = datetime.now(UTC)

    async def track(visitor: str, session: str, seconds: int) -> None:
        r = await client.post("/api/v1/analytics/event", json={
            "website_id": site, "visitor_id": visitor, "session_id": session, "page": "/",
            "timestamp": iso(now - timedelta(seconds=seconds))})  # fmt: skip
        assert r.status_code == 201, r.text

    await track("a", "same", 60)
    await track("a", "same", 50)  # one visitor over two commits
    await track("a", "later", 40)
    await track("b", "later", 30)  # a second visitor in a later commit
    r = await client.post("/api/v1/analytics/event/batch", json={"siteId": site, "events": [
        {"visitor_id": "c", "session_id": "batch", "page": "/"},
        {"visitor_id": "d", "session_id": "batch", "page": "/"}]})  # fmt: skip
    assert r.status_code < 300, r.text
    rows = await pool.fetch("SELECT session_id, mixed_visitors FROM sessions"
                            " WHERE website_id = $1 ORDER BY session_id", site)  # fmt: skip
    assert [(r["session_id"], r["mixed_visitors"]) for r in rows] == [
        ("batch", True), ("later", True), ("same", False)]
