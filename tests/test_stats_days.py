"""The day rollup (migration 014, resolvers/stats_days.py) against the reference model.

Given generated traffic around New York's fall-back, sealed into stored days, when a
dashboard asks for unfiltered stats — in the website's zone (stored days answer the
DAY/WEEK/MONTH buckets), in other zones and over ranges with ragged edges (the days
inside plus the events around them) — every number equals the model's. Writes into
stored days (a late event extending a session across midnight, an event written while
its day is being computed, a visitor's deletion) are visible at once and the next pass
stores the days again; a new zone replaces the stored days; days leaving the retention
go with their visitors' numbers.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from db.queries import stats_days_store
from db.queries.stats import DimensionSpec, ScanPlan, ScanRow, ScanScope
from db.queries.stats import scan as scan_sql
from db.queries.stats_days import read
from db.queries.stats_days_merge import merge
from resolvers.counters import STATS_DAY_READS
from resolvers.ranges import midnight
from resolvers.stats_days import SEALER_LOCK, SETTLE, forget_hints, seal_all, seal_once
from tests.conftest import gql
from tests.reference.traffic import generate_traffic
from tests.security_support import DELETE_VISITOR
from tests.stats_support import ALL_DIMENSIONS, dashboard_query, import_events, iso, stats
from tests.test_stats_model import DOMAIN, check_dashboard

NY = ZoneInfo("America/New_York")
TRAFFIC = (datetime(2026, 10, 19, tzinfo=UTC), datetime(2026, 11, 10, tzinfo=UTC))
Q_FROM = datetime(2026, 10, 28, tzinfo=NY)
Q_TO = datetime(2026, 11, 4, tzinfo=NY)
INTERVALS = ("DAY", "WEEK", "MONTH")
#: every stored dimension; PROPERTY (not stored) sends the event part to the scan
DIMS = tuple(d for d in ALL_DIMENSIONS if d[0] != "PROPERTY")


def _reads(source: str = "days") -> float:
    return float(STATS_DAY_READS.labels(source)._value.get())


async def _seal(pool: asyncpg.Pool, site: str) -> None:
    while await seal_all(pool, 730, sites=[site], budget=120):
        pass


async def _dashboard(
    app: Any, client: httpx.AsyncClient, headers: dict[str, str], site: str, events: list,
    start: datetime, end: datetime, tz: str | None, zone: str,
    intervals: tuple[str, ...] = INTERVALS, dims: tuple[tuple[str, str | None], ...] = DIMS,
) -> None:  # fmt: skip
    await app.state.runtime.cache.invalidate(site)
    query = dashboard_query(intervals=intervals, dimensions=dims)
    data = await stats(client, headers, site, query, start, end, tz)
    check_dashboard(data, events, start, end, zone, intervals, dims)


async def _website(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool
) -> tuple[str, list]:
    site = f"days-{uuid.uuid4().hex[:8]}"
    await pool.execute("INSERT INTO websites (id, domain, timezone) VALUES ($1, $2, $3)",
                       site, DOMAIN, "America/New_York")  # fmt: skip
    events = generate_traffic(20261128, site, DOMAIN, *TRAFFIC, n_visitors=160,
                              straddle=[Q_FROM, Q_TO, Q_FROM - (Q_TO - Q_FROM)],
                              include_session_markers=True)  # fmt: skip
    await import_events(client, admin_headers, site, events)
    return site, events


async def _before_and_after_sealing(
    app: Any, client: httpx.AsyncClient, headers: dict[str, str], pool: asyncpg.Pool,
    site: str, events: list,
) -> None:  # fmt: skip
    """The New York week equals the model with dirty days read from events, and again
    once a pass has stored them."""
    for seal in (False, True):
        if seal:
            await _seal(pool, site)
        await _dashboard(app, client, headers, site, events, Q_FROM, Q_TO, None,
                         "America/New_York")  # fmt: skip


@pytest.fixture
async def sealed_site(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool
) -> tuple[str, list]:
    site, events = await _website(client, admin_headers, pool)
    await _seal(pool, site)
    return site, events


async def test_a_website_without_stored_days_matches_the_model(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool
) -> None:
    """Everything read from events by the day rollup's own statement (its first read
    of a website never sealed), with and without event dimensions (a visitor with
    several sessions in a piece must count once)."""
    site, events = await _website(client, admin_headers, pool)
    sessions_per_visitor = {e["visitor_id"]: set() for e in events}
    for e in events:
        sessions_per_visitor[e["visitor_id"]].add(e["session_id"])
    assert max(len(s) for s in sessions_per_visitor.values()) > 1
    session_dims = tuple(d for d in DIMS if d[0] not in ("PAGE", "EVENT"))
    for dims in (DIMS, session_dims, ()):
        forget_hints()
        before = _reads("events")
        await _dashboard(app, client, admin_headers, site, events, Q_FROM, Q_TO, None,
                         "America/New_York", INTERVALS, dims)  # fmt: skip
        assert _reads("events") > before, dims


async def test_stored_days_match_the_model(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
    sealed_site: tuple[str, list],
) -> None:  # fmt: skip
    site, events = sealed_site
    first = min(datetime.fromisoformat(e["timestamp"]) for e in events).astimezone(NY).date()
    last = max(datetime.fromisoformat(e["timestamp"]) for e in events).astimezone(NY).date()
    stored = await pool.fetch("SELECT day, lo, hi FROM stats_days WHERE website_id = $1"
                              " ORDER BY day", site)  # fmt: skip
    end = (datetime.now(UTC) - SETTLE).astimezone(NY).date()  # the first day not stored
    assert [r["day"] for r in stored][0] == first and len(stored) == (end - first).days
    assert all(r["lo"] == midnight(r["day"], NY) for r in stored)
    assert last < end

    before = _reads()
    await _dashboard(app, client, admin_headers, site, events, Q_FROM, Q_TO, None,
                     "America/New_York")  # fmt: skip
    assert _reads() > before, "stored days answered"
    # ragged edges: the stored days inside, events and sessions around them
    ragged = (Q_FROM + timedelta(hours=7, minutes=30), Q_TO - timedelta(hours=5))
    for tz in ("Asia/Kolkata", "UTC", "Australia/Adelaide"):
        before = _reads()
        await _dashboard(app, client, admin_headers, site, events, *ragged, tz, tz, ())
        assert _reads() > before, tz
    # buckets in another zone than the stored days': read from events, still exact
    await _dashboard(app, client, admin_headers, site, events, Q_FROM, Q_TO, "UTC", "UTC")


async def test_writes_into_stored_days_show_at_once(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
    sealed_site: tuple[str, list],
) -> None:  # fmt: skip
    site, events = sealed_site
    # a late event continuing a session from before midnight into the next day: both
    # days change (the session's duration, its visitor on the second day)
    late_session = max(
        (e for e in events if e["event_type"] == "pageview"
         and datetime.fromisoformat(e["timestamp"]).astimezone(NY).date() == date(2026, 10, 30)),
        key=lambda e: e["timestamp"],
    )  # fmt: skip
    at = midnight(date(2026, 10, 31), NY) + timedelta(minutes=3)
    late = {**late_session, "id": str(uuid.uuid4()), "timestamp": iso(at), "page": "/late"}
    await import_events(client, admin_headers, site, [late])
    events = [*events, late]
    dirty = await pool.fetch("SELECT day FROM stats_day_dirty WHERE website_id = $1"
                             " ORDER BY day", site)  # fmt: skip
    assert [r["day"] for r in dirty] == [date(2026, 10, 30), date(2026, 10, 31)]
    await _dashboard(app, client, admin_headers, site, events, Q_FROM, Q_TO, None,
                     "America/New_York")  # fmt: skip
    await _seal(pool, site)
    assert await pool.fetchval("SELECT count(*) FROM stats_day_dirty WHERE website_id = $1",
                               site) == 0  # fmt: skip
    await _dashboard(app, client, admin_headers, site, events, Q_FROM, Q_TO, None,
                     "America/New_York")  # fmt: skip

    # a visitor deleted: their number goes at once, their days are read from events
    gone = late["visitor_id"]
    res = await gql(client, DELETE_VISITOR, {"i": {"websiteId": site, "visitorId": gone}},
                    admin_headers)  # fmt: skip
    assert res["data"]["deleteVisitorData"]["userErrors"] == [], res
    assert await pool.fetchval("SELECT count(*) FROM visitor_numbers WHERE website_id = $1"
                               " AND visitor_id = $2", site, gone) == 0  # fmt: skip
    events = [e for e in events if e["visitor_id"] != gone]
    await _before_and_after_sealing(app, client, admin_headers, pool, site, events)


async def test_a_write_while_its_day_is_computed_keeps_it_dirty(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
    sealed_site: tuple[str, list], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    site, events = sealed_site
    day = date(2026, 11, 2)
    extra = {**events[0], "id": str(uuid.uuid4()), "visitor_id": "mid-seal", "session_id": "mid",
             "timestamp": iso(midnight(day, NY) + timedelta(hours=9)), "page": "/mid"}  # fmt: skip
    compute = stats_days_store.compute_day

    async def compute_then_write(*args: Any) -> Any:
        rows = await compute(*args)
        await import_events(client, admin_headers, site, [extra])  # commits meanwhile
        return rows

    await pool.execute("DELETE FROM stats_days WHERE website_id = $1 AND day = $2", site, day)
    monkeypatch.setattr(stats_days_store, "compute_day", compute_then_write)
    await stats_days_store.seal_day(pool, site, day, midnight(day, NY),
                                    midnight(day + timedelta(days=1), NY))  # fmt: skip
    monkeypatch.undo()
    assert await pool.fetchval("SELECT count(*) FROM stats_day_dirty WHERE website_id = $1"
                               " AND day = $2", site, day) == 1  # fmt: skip
    events = [*events, extra]
    await _before_and_after_sealing(app, client, admin_headers, pool, site, events)


async def test_new_zone_and_retention(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
    sealed_site: tuple[str, list],
) -> None:  # fmt: skip
    site, events = sealed_site
    res = await gql(client, """mutation($i: UpdateWebsiteInput!) { updateWebsite(input: $i) {
        userErrors { message } } }""", {"i": {"id": site, "timezone": "Asia/Kolkata"}},
        admin_headers)  # fmt: skip
    assert res["data"]["updateWebsite"]["userErrors"] == [], res
    await _seal(pool, site)
    kolkata = ZoneInfo("Asia/Kolkata")
    stored = await pool.fetch("SELECT day, lo FROM stats_days WHERE website_id = $1", site)
    assert stored and all(r["lo"] == midnight(r["day"], kolkata) for r in stored)
    start, end = midnight(date(2026, 10, 27), kolkata), midnight(date(2026, 11, 5), kolkata)
    before = _reads()
    await _dashboard(app, client, admin_headers, site, events, start, end, None, "Asia/Kolkata")
    assert _reads() > before

    # retention: a pass "later" drops the days before its first retained day and the
    # numbers of visitors not seen since
    later = datetime(2026, 11, 1, 12, tzinfo=UTC) + timedelta(days=730)
    await seal_all(pool, 730, now=later, sites=[site], budget=0)
    first = (later - timedelta(days=730)).astimezone(kolkata).date() + timedelta(days=1)
    assert await pool.fetchval("SELECT min(day) FROM stats_days WHERE website_id = $1",
                               site) == first  # fmt: skip
    old = await pool.fetchval("SELECT count(*) FROM visitor_numbers WHERE website_id = $1"
                              " AND last_day < $2", site, first)  # fmt: skip
    assert old == 0


async def test_one_sealing_pass_at_a_time_and_hints(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool
) -> None:
    """While another process holds the sealer's lock a pass does nothing; a website
    read once without stored days is sent to the scan until a pass has run."""
    site, events = await _website(client, admin_headers, pool)
    forget_hints()
    query = dashboard_query(intervals=("DAY",), dimensions=(("COUNTRY", None),))
    before = _reads("events")
    await app.state.runtime.cache.invalidate(site)
    await stats(client, admin_headers, site, query, Q_FROM, Q_TO, None)
    first = _reads("events")
    assert first > before
    await app.state.runtime.cache.invalidate(site)
    await stats(client, admin_headers, site, query, Q_FROM, Q_TO, None)
    assert _reads("events") == first, "the second read went to the scan"

    async with pool.acquire() as other:
        await other.execute("SELECT pg_advisory_lock($1)", SEALER_LOCK)
        try:
            assert await seal_once(pool, 730, [site]) is False
        finally:
            await other.execute("SELECT pg_advisory_unlock($1)", SEALER_LOCK)
    assert await pool.fetchval("SELECT count(*) FROM stats_days WHERE website_id = $1",
                               site) == 0  # fmt: skip
    while await seal_once(pool, 730, [site]):
        pass
    assert await pool.fetchval("SELECT count(*) FROM stats_days WHERE website_id = $1",
                               site) > 0  # fmt: skip
    before = _reads()
    await _dashboard(app, client, admin_headers, site, events, Q_FROM, Q_TO, None,
                     "America/New_York", ("DAY", "WEEK"), (("COUNTRY", None),))  # fmt: skip
    assert _reads() > before


async def test_hours_of_stored_days_answer_summaries(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
    sealed_site: tuple[str, list],
) -> None:  # fmt: skip
    """A range starting or ending on a full hour inside stored days reads the summary of
    those days' hours — the previous period across New York's fall-back starts at 23:00
    — and equals the scan and the model; a scope that needs breakdowns reads the part
    from events instead."""
    site, events = sealed_site
    start, end = Q_FROM.astimezone(UTC), Q_TO.astimezone(UTC)  # 7 days and an hour
    previous = start - (end - start)
    assert previous.astimezone(NY).hour == 23
    since = previous - timedelta(days=365)
    for scope, dims, hours in (
        (ScanScope(site, previous, start), (), 1),
        (ScanScope(site, start + timedelta(hours=5), end - timedelta(hours=3)), (), 19 + 21),
        (ScanScope(site, previous, start), (DimensionSpec("COUNTRY", None, 0, 50),), 0),
    ):  # fmt: skip
        plan = ScanPlan((scope,), (), "America/New_York", ("DAY",), dims, since)
        rows, meta = merge(plan, await read(pool, plan))
        assert meta.hours == {0: hours}, (scope, dims)
        scanned = await scan_sql(pool, plan)
        assert _comparable(plan, rows) == _comparable(plan, scanned), (scope, dims)
    ragged = (start + timedelta(hours=5), end - timedelta(hours=3))
    await _dashboard(app, client, admin_headers, site, events, *ragged, None,
                     "America/New_York", ("DAY", "WEEK"), ())  # fmt: skip


def _comparable(plan: ScanPlan, rows: list[ScanRow]) -> list[ScanRow]:
    """Sorted; rank and total only where they mean something (breakdown rows)."""
    first = plan.first_dimension_code
    out = [r if r.code >= first else replace(r, total=None, rank=1) for r in rows]
    return sorted(out, key=lambda r: (r.scope, r.code, r.key or "", r.bucket or START))


START = datetime(2000, 1, 1, tzinfo=UTC)
