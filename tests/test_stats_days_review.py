"""Review of the day rollup (migration 014): cases where it must equal the model or the
scan, found wrong in review."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from resolvers.ranges import midnight
from tests.reference.traffic import generate_traffic
from tests.stats_support import import_events
from tests.test_stats_days import DIMS, _dashboard, _reads, _seal
from tests.test_stats_model import DOMAIN


async def _zone_site(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool, zone: str,
    start: datetime, end: datetime, straddle: list[datetime], seed: int = 7,
) -> tuple[str, list]:  # fmt: skip
    site = f"review-{uuid.uuid4().hex[:8]}"
    await pool.execute("INSERT INTO websites (id, domain, timezone) VALUES ($1, $2, $3)",
                       site, DOMAIN, zone)  # fmt: skip
    events = generate_traffic(seed, site, DOMAIN, start, end, n_visitors=60, straddle=straddle,
                              include_session_markers=True)  # fmt: skip
    await import_events(client, admin_headers, site, events)
    return site, events


@pytest.mark.parametrize(("zone", "day"), [
    ("America/Santiago", date(2026, 9, 6)),  # midnight skipped (00:00 -> 01:00)
    ("Asia/Beirut", date(2026, 10, 25)),  # 00:00 -> 23:00 the day before
    ("America/Havana", date(2026, 3, 8)),
    ("America/Havana", date(2026, 11, 1)),  # 01:00 -> 00:00: midnight twice
    ("Africa/Cairo", date(2026, 4, 24)),
])  # fmt: skip
async def test_dst_at_midnight_matches_the_model(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
    zone: str, day: date,
) -> None:  # fmt: skip
    tz = ZoneInfo(zone)
    q_from, q_to = midnight(day - timedelta(days=3), tz), midnight(day + timedelta(days=4), tz)
    site, events = await _zone_site(
        client, admin_headers, pool, zone, q_from - timedelta(days=8), q_to + timedelta(days=2),
        [midnight(day + timedelta(days=i), tz) for i in range(-3, 4)])  # fmt: skip
    await _seal(pool, site)
    stored = await pool.fetch("SELECT day, lo, hi FROM stats_days WHERE website_id = $1"
                              " ORDER BY day", site)  # fmt: skip
    assert stored
    for r in stored:
        assert r["lo"] == midnight(r["day"], tz) and r["hi"] == midnight(r["day"] + timedelta(days=1), tz)
    before = _reads()
    await _dashboard(app, client, admin_headers, site, events, q_from, q_to, None, zone)
    assert _reads() > before
    ragged = (q_from + timedelta(hours=5), q_to - timedelta(hours=3))
    await _dashboard(app, client, admin_headers, site, events, *ragged, "UTC", "UTC", (), DIMS)


async def _same_as_scan(
    app: Any, client: httpx.AsyncClient, headers: dict[str, str], site: str,
    start: datetime, end: datetime, tz: str | None,
    intervals: tuple[str, ...] = ("DAY", "WEEK", "MONTH"),
    dims: tuple[tuple[str, str | None], ...] = DIMS,
) -> dict[str, Any]:  # fmt: skip
    """The dashboard with the day rollup, then the same with it off (the scan): equal."""
    from tests.stats_support import dashboard_query, stats

    rt = app.state.runtime
    query = dashboard_query(intervals=intervals, dimensions=dims)
    answers = []
    for on in (True, False):
        rt.day_rollup = on
        try:
            await rt.cache.invalidate(site)
            answers.append(await stats(client, headers, site, query, start, end, tz))
        finally:
            rt.day_rollup = True
    _close_tree(answers[0], answers[1], "rollup vs scan")
    return answers[0]


def _close_tree(a: Any, b: Any, where: str) -> None:
    from tests.stats_support import close

    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _close_tree(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{where}: {len(a)} != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close_tree(x, y, f"{where}[{i}]")
    else:
        close(a, b, where)


async def _copy_rows(pool: asyncpg.Pool, site: str, payloads: list[dict[str, Any]]) -> list[tuple]:
    """EventRows (db.writer.EVENT_COLUMNS) of stored events, re-identified as ``payloads``
    say (keys id, visitor_id, session_id; ``of``: the stored event's id)."""
    from db.writer import EVENT_COLUMNS

    rows = []
    for p in payloads:
        r = await pool.fetchrow(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events"
                                " WHERE website_id = $1 AND id = $2::uuid", site, p["of"])  # fmt: skip
        row = dict(r)
        row.update(id=uuid.UUID(p["id"]), visitor_id=p["visitor_id"], session_id=p["session_id"])
        rows.append(tuple(row[c] for c in EVENT_COLUMNS))
    return rows


async def test_a_write_before_the_first_pass_is_not_lost(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
) -> None:  # fmt: skip
    """A write open while a website is sealed for the first time: the trigger took no
    writers' lock (the website had no stats_day_sites row yet), so the sealer did not
    wait for it and stored its day without the write, clean."""
    from db.writer import write_rows

    zone = "America/New_York"
    tz = ZoneInfo(zone)
    day = date(2026, 11, 2)
    q_from, q_to = midnight(day - timedelta(days=2), tz), midnight(day + timedelta(days=3), tz)
    site, events = await _zone_site(client, admin_headers, pool, zone,
                                    q_from - timedelta(days=2), q_to + timedelta(days=1), [])  # fmt: skip
    src = next(e for e in events if e["event_type"] == "pageview"
               and datetime.fromisoformat(e["timestamp"]).astimezone(tz).date() == day)  # fmt: skip
    extra = {**src, "id": str(uuid.uuid4()), "visitor_id": "open-writer", "session_id": "open-w"}
    rows = await _copy_rows(pool, site, [{**extra, "of": src["id"]}])
    async with pool.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        await write_rows(conn, rows)
        sealing = asyncio.ensure_future(_seal(pool, site))
        await asyncio.sleep(3)  # the pass runs (or, correctly, waits for this write)
        await tr.commit()
    await sealing
    await _dashboard(app, client, admin_headers, site, [*events, extra], q_from, q_to, None, zone)


@pytest.mark.parametrize("mutation", ["delete", "anonymize"])
async def test_a_visitor_erased_while_their_day_is_computed_leaves_no_number(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch, mutation: str,
) -> None:  # fmt: skip
    """deleteVisitorData / anonymizeVisitorData commits after the sealer's snapshot of a
    day the visitor has events on and no number yet: the sealer numbered them from its
    snapshot after the erasure had deleted their (absent) number, so their visitor id
    stayed in visitor_numbers (until retention), with nothing left to remove it."""
    from db.queries import stats_days_store
    from tests.conftest import gql
    from tests.security_support import ANONYMIZE_VISITOR, DELETE_VISITOR

    zone = "America/New_York"
    tz = ZoneInfo(zone)
    day = date(2026, 11, 2)
    lo, hi = midnight(day, tz), midnight(day + timedelta(days=1), tz)
    site, events = await _zone_site(client, admin_headers, pool, zone, lo, hi, [])
    gone = next(e["visitor_id"] for e in events if e["event_type"] == "pageview")
    await stats_days_store.announce(pool, site, zone, hi)
    compute = stats_days_store.compute_day

    query, name = ((DELETE_VISITOR, "deleteVisitorData") if mutation == "delete"
                   else (ANONYMIZE_VISITOR, "anonymizeVisitorData"))  # fmt: skip
    erasing: list[asyncio.Future[Any]] = []

    async def erase_then_compute(*args: Any) -> Any:
        # the sealer's snapshot is taken; the erasure runs now (and commits, unless it
        # waits for the sealer)
        erasing.append(asyncio.ensure_future(gql(
            client, query, {"i": {"websiteId": site, "visitorId": gone}}, admin_headers)))
        await asyncio.sleep(1.5)
        return await compute(*args)

    monkeypatch.setattr(stats_days_store, "compute_day", erase_then_compute)
    await stats_days_store.seal_day(pool, site, day, lo, hi)
    monkeypatch.undo()
    res = await erasing[0]
    assert res["data"][name]["userErrors"] == [], res
    assert await pool.fetchval("SELECT count(*) FROM visitor_numbers WHERE website_id = $1"
                               " AND visitor_id = $2", site, gone) == 0  # fmt: skip
    # and the day is read right (dirty, or stored again)
    await _seal(pool, site)
    assert await pool.fetchval("SELECT count(*) FROM visitor_numbers WHERE website_id = $1"
                               " AND visitor_id = $2", site, gone) == 0  # fmt: skip


async def test_many_websites_in_one_statement_match_the_model(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
) -> None:  # fmt: skip
    """``websites { stats { summary(compare) } }``: websites of different zones, some
    sealed, in one plan, over a range with ragged edges and one ending in the future."""
    from tests.conftest import gql
    from tests.stats_support import SUMMARY_FIELDS, iso, same_summary
    from tests.test_stats_model import model

    day = date(2026, 11, 2)
    sites = {}
    for i, zone in enumerate(("America/New_York", "Asia/Kolkata", "America/Santiago")):
        tz = ZoneInfo(zone)
        site, events = await _zone_site(client, admin_headers, pool, zone,
                                        midnight(day - timedelta(days=9), tz),
                                        midnight(day + timedelta(days=6), tz), [], seed=30 + i)  # fmt: skip
        if i < 2:
            await _seal(pool, site)
        sites[site] = events
    now = datetime.now(ZoneInfo("UTC"))
    for start, end in ((datetime(2026, 10, 27, 5, 17, tzinfo=ZoneInfo("UTC")),
                        datetime(2026, 11, 6, 1, 3, tzinfo=ZoneInfo("UTC"))),
                       (datetime(2026, 11, 1, tzinfo=ZoneInfo("UTC")), now + timedelta(days=2))):  # fmt: skip
        for site in sites:
            await app.state.runtime.cache.invalidate(site)
        q = (f"{{ websites {{ id stats(range: {{from: \"{iso(start)}\", to: \"{iso(end)}\"}})"
             f" {{ summary(compare: true) {{ {SUMMARY_FIELDS} previous {{ {SUMMARY_FIELDS} }} }} }} }} }}")  # fmt: skip
        res = await gql(client, q, {}, admin_headers)
        assert "errors" not in res, res
        got = {w["id"]: w["stats"]["summary"] for w in res["data"]["websites"] if w["id"] in sites}
        assert set(got) == set(sites)
        for site, events in sites.items():
            cmp = model.compare(events, DOMAIN, start, end, [])
            same_summary(got[site], cmp["current"], f"{site} summary")
            same_summary(got[site]["previous"], cmp["previous"], f"{site} previous")


async def test_sessions_with_two_visitors_match_the_model(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
) -> None:  # fmt: skip
    """Sessions whose later events carry another visitor id (across midnight too), stored,
    then one of those visitors erased."""
    from tests.conftest import gql
    from tests.security_support import DELETE_VISITOR

    zone = "America/New_York"
    tz = ZoneInfo(zone)
    day = date(2026, 11, 2)
    q_from, q_to = midnight(day - timedelta(days=3), tz), midnight(day + timedelta(days=3), tz)
    site = f"review-{uuid.uuid4().hex[:8]}"
    await pool.execute("INSERT INTO websites (id, domain, timezone) VALUES ($1, $2, $3)",
                       site, DOMAIN, zone)  # fmt: skip
    events = generate_traffic(41, site, DOMAIN, q_from - timedelta(days=2), q_to + timedelta(days=1),
                              n_visitors=50, straddle=[midnight(day + timedelta(days=i), tz)
                                                       for i in range(-3, 3)],
                              include_session_markers=True)  # fmt: skip
    by_session: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_session.setdefault(e["session_id"], []).append(e)
    mixed = 0
    for _, evs in sorted(by_session.items()):
        evs.sort(key=lambda e: e["timestamp"])
        if len(evs) >= 3 and mixed < 25:
            mixed += 1
            other = evs[-1]["visitor_id"] + "-b" if mixed % 2 else events[mixed]["visitor_id"]
            for e in evs[len(evs) // 2:]:
                e["visitor_id"] = other
    await import_events(client, admin_headers, site, events)
    await _seal(pool, site)
    await _dashboard(app, client, admin_headers, site, events, q_from, q_to, None, zone)
    await _dashboard(app, client, admin_headers, site, events, q_from + timedelta(hours=3),
                     q_to - timedelta(hours=2), "UTC", "UTC", (), DIMS)  # fmt: skip
    gone = next(e["visitor_id"] for e in events if e["visitor_id"].endswith("-b"))
    res = await gql(client, DELETE_VISITOR, {"i": {"websiteId": site, "visitorId": gone}},
                    admin_headers)  # fmt: skip
    assert res["data"]["deleteVisitorData"]["userErrors"] == [], res
    # (the sessions table keeps what the erased visitor's events added to another
    # visitor's session, on both paths: compare with the scan, not the model)
    await _same_as_scan(app, client, admin_headers, site, q_from, q_to, None)
    await _seal(pool, site)
    await _same_as_scan(app, client, admin_headers, site, q_from, q_to, None)
