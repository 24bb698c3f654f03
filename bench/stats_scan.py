"""Cold timings of a full dashboard's stats statements against a bench database.

    python -m bench.stats_scan --dsn postgresql://postgres@127.0.0.1:5432/footfall_bench_10m
        [--site site-001] [--days 30] [--zone Europe/Berlin] [--runs 7] [--naive] [--raw]

The dashboard is the one of ``tests/test_stats_batching.py`` with 8 breakdowns (PAGE,
ENTRY_PAGE, REFERRER, SOURCE, COUNTRY, BROWSER, OS, DEVICE): summary(compare: true),
timeseries(DAY) and realtime — the three statements ``resolvers.stats`` issues, built
with ``db.queries.stats.build_scan`` exactly as the resolver plans them. Each run opens
new connections (fresh plans, nothing prepared: a "cold" run for the server process;
the OS page cache and shared_buffers stay as they are — warm after the first run) and
runs the three statements concurrently, as the resolver does. ``--naive`` also times
one plain statement per widget (sequentially, one connection), the baseline that the
target (≤ 0.2 ×) refers to. Medians are reported; the machine is shared, so repeat.
The plans use the session rollup as the service does (``STATS_SESSION_ROLLUP=on``);
``--raw`` times the raw path instead (every event in range).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from db.pool import SESSION_SETTINGS
from db.queries.dimensions import NOT_IGNORED, session_value_sql
from db.queries.stats import DimensionSpec, ScanPlan, build_scan
from db.queries.stats_events import REALTIME_SQL
from resolvers.ranges import Range
from resolvers.stats_plans import Shape, plan_batch
from resolvers.stats_types import Scope

_SETTINGS = {"timezone": "UTC", **SESSION_SETTINGS}  # as db.pool's connections
DIMENSIONS = ("PAGE", "ENTRY_PAGE", "REFERRER", "SOURCE", "COUNTRY", "BROWSER", "OS", "DEVICE")


ROLLUP = True  # --raw: False


def plans(site: str, lo: datetime, hi: datetime, zone: str) -> list[ScanPlan]:
    """The statements the resolver plans for the dashboard (``plan_batch``): the current
    range's main part, and its event breakdowns with the previous period's summary."""
    dims = tuple(DimensionSpec(d, None, 0, 10) for d in sorted(DIMENSIONS))
    since = datetime.now(UTC) - timedelta(days=730) if ROLLUP else None
    current = Scope(site, Range(lo, hi, zone), ())
    previous = Scope(site, Range(lo - (hi - lo), lo, zone), ())
    groups = {Shape((), zone, ("DAY",), dims): [current], Shape((), None, (), ()): [previous]}
    return plan_batch(groups, since).plans


def naive_statements(
    site: str, lo: datetime, hi: datetime, zone: str
) -> list[tuple[str, list[object]]]:
    """One statement per widget, written the obvious way (count(DISTINCT) per query)."""
    ev = f"FROM events e WHERE e.website_id = $1 AND e.ts >= $2 AND e.ts < $3 AND {NOT_IGNORED}"
    ss = "FROM sessions s WHERE s.website_id = $1 AND s.started_at >= $2 AND s.started_at < $3"
    visit = ("count(*) AS visits, count(*) FILTER (WHERE s.pageviews = 1 AND s.events = 0) AS b,"
             " sum(extract(epoch FROM s.last_seen - s.started_at)) AS d, sum(s.pageviews) AS spv")  # fmt: skip
    visit_row = (
        "count(*), count(*) FILTER (WHERE s.pageviews = 1 AND s.events = 0),"
        " sum(extract(epoch FROM s.last_seen - s.started_at)), sum(s.pageviews)"
    )
    summary = (f"SELECT (SELECT row(count(DISTINCT visitor_id), count(*) FILTER (WHERE"
               f" event_type = 'pageview'), count(*) FILTER (WHERE event_type <> 'pageview'))"
               f" {ev}), (SELECT row({visit_row}) {ss})")  # fmt: skip
    day_e = "date_trunc('day', e.ts AT TIME ZONE $4)"
    day_s = "date_trunc('day', s.started_at AT TIME ZONE $4)"
    series = (f"SELECT coalesce(a.k, b.k), a.v, a.pv, b.visits, b.b, b.d FROM"
              f" (SELECT {day_e} AS k, count(DISTINCT visitor_id) AS v, count(*) FILTER"
              f" (WHERE event_type = 'pageview') AS pv {ev} GROUP BY 1) a FULL JOIN"
              f" (SELECT {day_s} AS k, {visit} {ss} GROUP BY 1) b ON a.k = b.k")  # fmt: skip
    out: list[tuple[str, list[object]]] = [(summary, [site, lo, hi]),
                                           (summary, [site, lo - (hi - lo), lo]),
                                           (series, [site, lo, hi, zone])]  # fmt: skip
    for dim in DIMENSIONS:
        if dim == "PAGE":
            sql = (f"SELECT e.page, count(DISTINCT visitor_id) AS v, count(*) AS pv {ev}"
                   f" AND e.event_type = 'pageview' GROUP BY 1"
                   f" ORDER BY 2 DESC, e.page COLLATE \"C\" LIMIT 10")  # fmt: skip
        else:
            val = session_value_sql(dim, "s")
            sql = (f"SELECT coalesce(a.k, b.k) AS k, a.v, a.pv, b.visits, b.b, b.d FROM"
                   f" (SELECT {val} AS k, count(DISTINCT e.visitor_id) AS v, count(*) FILTER"
                   f" (WHERE e.event_type = 'pageview') AS pv FROM events e JOIN sessions s"
                   f" ON s.website_id = e.website_id AND s.session_id = e.session_id"
                   f" WHERE e.website_id = $1 AND e.ts >= $2 AND e.ts < $3 AND {NOT_IGNORED}"
                   f" GROUP BY 1) a FULL JOIN (SELECT {val} AS k, {visit} {ss} GROUP BY 1) b"
                   f" ON a.k = b.k ORDER BY a.v DESC NULLS LAST, coalesce(a.k, b.k) COLLATE \"C\""
                   f" LIMIT 10")  # fmt: skip
        out.append((sql, [site, lo, hi]))
    out.append((REALTIME_SQL, [[site], hi - timedelta(minutes=5), hi, 10]))
    return out


async def _timed(dsn: str, sql: str, args: list[object]) -> tuple[float, int]:
    conn = await asyncpg.connect(dsn, server_settings=_SETTINGS)
    try:
        t0 = time.perf_counter()
        rows = await conn.fetch(sql, *args)
        return time.perf_counter() - t0, len(rows)
    finally:
        await conn.close()


async def dashboard_once(dsn: str, site: str, lo: datetime, hi: datetime, zone: str) -> dict:
    statements = [build_scan(plan) for plan in plans(site, lo, hi, zone)]
    t0 = time.perf_counter()
    results = await asyncio.gather(
        *(_timed(dsn, sql, args) for sql, args in statements),
        _timed(dsn, REALTIME_SQL, [[site], hi - timedelta(minutes=5), hi, 10]),
    )
    wall = time.perf_counter() - t0
    out = {"wall": wall, "realtime": results[-1][0]}
    out |= {f"scan {i + 1}": r[0] for i, r in enumerate(results[:-1])}
    return out


async def naive_once(dsn: str, site: str, lo: datetime, hi: datetime, zone: str) -> float:
    conn = await asyncpg.connect(dsn, server_settings=_SETTINGS)
    try:
        t0 = time.perf_counter()
        for sql, args in naive_statements(site, lo, hi, zone):
            await conn.fetch(sql, *args)
        return time.perf_counter() - t0
    finally:
        await conn.close()


def _ms(values: list[float]) -> str:
    return f"median {1000 * statistics.median(values):.0f} ms (min {1000 * min(values):.0f}," \
           f" max {1000 * max(values):.0f}, n={len(values)})"  # fmt: skip


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/footfall_bench_10m")
    ap.add_argument("--site", default="site-001")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--zone", default="Europe/Berlin")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--naive", action="store_true")
    ap.add_argument("--skip-scan", action="store_true")
    ap.add_argument("--raw", action="store_true", help="time the raw path, not the rollup")
    a = ap.parse_args()
    global ROLLUP
    ROLLUP = not a.raw
    conn = await asyncpg.connect(a.dsn)
    end = await conn.fetchval("SELECT max(ts) FROM events WHERE website_id = $1", a.site)
    await conn.close()
    zone = ZoneInfo(a.zone)
    today = end.astimezone(zone).date() + timedelta(days=1)
    hi = datetime.combine(today, datetime.min.time(), tzinfo=zone).astimezone(UTC)
    lo = datetime.combine(today - timedelta(days=a.days), datetime.min.time(),
                          tzinfo=zone).astimezone(UTC)  # fmt: skip
    conn = await asyncpg.connect(a.dsn)
    n = await conn.fetchval("SELECT count(*) FROM events WHERE website_id = $1 AND ts >= $2"
                            " AND ts < $3", a.site, lo, hi)  # fmt: skip
    await conn.close()
    print(f"{a.site}: {n} events in [{lo:%Y-%m-%d %H:%M}, {hi:%Y-%m-%d %H:%M}) UTC, zone {a.zone}")
    runs = (
        []
        if a.skip_scan
        else [await dashboard_once(a.dsn, a.site, lo, hi, a.zone) for _ in range(a.runs)]
    )
    for name in runs[0] if runs else ():
        print(f"  dashboard {name:8}: {_ms([r[name] for r in runs])}")
    if a.naive:
        naive = [
            await naive_once(a.dsn, a.site, lo, hi, a.zone) for _ in range(max(3, a.runs // 2))
        ]
        print(f"  naive (one statement per widget, sequential): {_ms(naive)}")


if __name__ == "__main__":
    asyncio.run(main())
