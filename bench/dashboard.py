"""Dashboard benchmark: the one-request GraphQL dashboard of the largest website over
LAST_30_DAYS, cold and warm, against naive one-query-per-widget SQL over raw
``events``/``sessions``, on the 10M-event dataset and on the 10× smaller one.

    python -m bench.dashboard [--cold 2] [--warm 50] [--naive 2] [--explain PATH]

The request: ``summary(compare: true)`` (every metric, previous, change),
``timeseries(interval: DAY)``, 8 breakdowns (PAGE, ENTRY_PAGE, REFERRER, SOURCE,
COUNTRY, BROWSER, OS, DEVICE; 10 rows each with every field) and ``realtime``.

* cold = the first request of a freshly started ``footfall serve`` (one worker, no
  ``REDIS_URL``, so the stats cache is the new process's empty in-memory one); a new
  process per sample. PostgreSQL's buffers and the OS page cache are left as they are
  (warm from the previous samples: this measures the service, not the disk).
* warm = the identical request repeated on that server: answered whole from the
  response cache (``graph/response_cache.py``, 1 s), else from the stats cache (ranges
  touching "now" are cached for 5 s; the repeats take well under that).
* naive SQL = the same widgets as one straightforward statement each (``NAIVE``):
  summary, previous summary, time series, 8 breakdowns, realtime (2), run one after
  another on one connection; the figure is the sum (median of ``--naive`` runs).
* SQL txns per warm request: committed transactions of the database during the warm
  repeats, per request (0 = answered entirely from the cache).

The GraphQL answer is checked against the naive one (summary, first page of every
breakdown) so both sides compute the same numbers. ``--explain PATH`` additionally
captures ``EXPLAIN ANALYZE`` of every statement the server runs for one cold request
(``auto_explain`` via ``ALTER DATABASE … SET``, read back from PostgreSQL's log) and
writes them to PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.common import Server, table
from bench.dataset import LARGEST, LARGEST_TZ, Dataset, ensure
from db.pool import create_pool
from graph.auth import create_token
from graph.settings import Secret, Settings
from resolvers.ranges import preset_range
from resolvers.stats_days import DAY_TABLES, seal_all

JWT = "bench-secret-0123456789abcdef-0123456789"
DIMS = ["PAGE", "ENTRY_PAGE", "REFERRER", "SOURCE", "COUNTRY", "BROWSER", "OS", "DEVICE"]
SUMMARY = "pageviews events visitors visits bounceRate visitDuration viewsPerVisit"
ROW = "value visitors pageviews visits bounceRate visitDuration share"
QUERY = (
    "query($id: ID!) { website(id: $id) { stats(range: {preset: LAST_30_DAYS}) {\n"
    f"  summary(compare: true) {{ {SUMMARY} previous {{ {SUMMARY} }}\n"
    f"    change {{ {SUMMARY} }} }}\n"
    "  timeseries(interval: DAY) { start pageviews visitors visits bounceRate visitDuration }\n"
    + "".join(f"  {d.lower()}: breakdown(dimension: {d}) {{ totalRows rows {{ {ROW} }} }}\n"
              for d in DIMS)
    + "}\n realtime { visitors pageviews topPages { value visitors } } } }"
)  # fmt: skip
TARGETS = (
    "targets: cold ≤ 0.2 × naive SQL and ≤ 250 ms; warm ≤ 5 ms; 10× data → ≤ 3× time; "
    "RSS ≤ 300 MB"
)  # fmt: skip

# ---------------------------------------------------------------- naive SQL, per widget
IGNORED = "event_type NOT IN ('session_start', 'session_end')"
BOUNCE = "(s.pageviews = 1 AND s.events = 0)"
DURATION = "extract(epoch FROM s.last_seen - s.started_at)"
SESSION_VALUE = {
    "ENTRY_PAGE": "coalesce(s.entry_page, '(none)')",
    "REFERRER": "coalesce(s.referrer_host, '(direct)')",
    "SOURCE": "coalesce(s.utm_source, s.referrer_host, '(direct)')",
    "COUNTRY": "coalesce(s.country, '(none)')",
    "BROWSER": "coalesce(s.browser, '(none)')",
    "OS": "coalesce(s.os, '(none)')",
    "DEVICE": "coalesce(s.device, '(none)')",
}
NAIVE_SUMMARY = f"""
SELECT (SELECT count(*) FILTER (WHERE event_type = 'pageview') FROM events
        WHERE website_id = $1 AND ts >= $2 AND ts < $3 AND {IGNORED}) AS pageviews,
       (SELECT count(*) FILTER (WHERE event_type <> 'pageview') FROM events
        WHERE website_id = $1 AND ts >= $2 AND ts < $3 AND {IGNORED}) AS events,
       (SELECT count(DISTINCT visitor_id) FROM events
        WHERE website_id = $1 AND ts >= $2 AND ts < $3 AND {IGNORED}) AS visitors,
       v.*
FROM (SELECT count(*) AS visits, count(*) FILTER (WHERE {BOUNCE}) AS bounces,
             coalesce(avg({DURATION}), 0) AS duration, sum(s.pageviews) AS spv
      FROM sessions s WHERE website_id = $1 AND started_at >= $2 AND started_at < $3) v"""
NAIVE_TIMESERIES = f"""
WITH days AS (
  SELECT d::date AS day FROM generate_series(($2 AT TIME ZONE $4)::date,
                                             ($3 AT TIME ZONE $4 - interval '1 day')::date,
                                             interval '1 day') d),
ev AS (
  SELECT (ts AT TIME ZONE $4)::date AS day, count(*) FILTER (WHERE event_type = 'pageview') AS pv,
         count(DISTINCT visitor_id) AS visitors
  FROM events WHERE website_id = $1 AND ts >= $2 AND ts < $3 AND {IGNORED} GROUP BY 1),
ss AS (
  SELECT (started_at AT TIME ZONE $4)::date AS day, count(*) AS visits,
         count(*) FILTER (WHERE {BOUNCE}) AS bounces, avg({DURATION}) AS duration
  FROM sessions s WHERE website_id = $1 AND started_at >= $2 AND started_at < $3 GROUP BY 1)
SELECT days.day, coalesce(ev.pv, 0) AS pageviews, coalesce(ev.visitors, 0) AS visitors,
       coalesce(ss.visits, 0) AS visits, ss.bounces, ss.duration
FROM days LEFT JOIN ev USING (day) LEFT JOIN ss USING (day) ORDER BY days.day"""
NAIVE_PAGE = """
SELECT page AS value, count(DISTINCT visitor_id) AS visitors, count(*) AS pageviews,
       count(*) OVER () AS total
FROM events WHERE website_id = $1 AND ts >= $2 AND ts < $3 AND event_type = 'pageview'
GROUP BY page ORDER BY visitors DESC, page COLLATE "C" LIMIT 10"""
NAIVE_SESSION_DIM = f"""
WITH ev AS (
  SELECT {{value}} AS value, count(DISTINCT e.visitor_id) AS visitors,
         count(*) FILTER (WHERE e.event_type = 'pageview') AS pageviews
  FROM events e JOIN sessions s ON s.website_id = e.website_id AND s.session_id = e.session_id
  WHERE e.website_id = $1 AND e.ts >= $2 AND e.ts < $3 AND e.{IGNORED} GROUP BY 1),
ss AS (
  SELECT {{value}} AS value, count(*) AS visits, count(*) FILTER (WHERE {BOUNCE}) AS bounces,
         avg({DURATION}) AS duration
  FROM sessions s WHERE s.website_id = $1 AND s.started_at >= $2 AND s.started_at < $3
  GROUP BY 1)
SELECT ev.value, ev.visitors, ev.pageviews, coalesce(ss.visits, 0) AS visits, ss.bounces,
       ss.duration, count(*) OVER () AS total
FROM ev LEFT JOIN ss USING (value)
ORDER BY ev.visitors DESC, ev.value COLLATE "C" LIMIT 10"""
NAIVE_REALTIME = f"""
SELECT count(DISTINCT visitor_id) AS visitors,
       count(*) FILTER (WHERE event_type = 'pageview') AS pageviews
FROM events WHERE website_id = $1 AND ts >= now() - interval '5 minutes' AND ts <= now()
  AND {IGNORED}"""
NAIVE_TOP_PAGES = """
SELECT page, count(DISTINCT visitor_id) AS visitors FROM events
WHERE website_id = $1 AND ts >= now() - interval '5 minutes' AND ts <= now()
  AND event_type = 'pageview'
GROUP BY page ORDER BY visitors DESC, page COLLATE "C" LIMIT 5"""


def naive_widgets(lo: datetime, hi: datetime) -> list[tuple[str, str, list[Any]]]:
    """(widget, statement, arguments) of the naive dashboard of LARGEST over [lo, hi)."""
    prev = lo - (hi - lo)
    out = [
        ("summary", NAIVE_SUMMARY, [LARGEST, lo, hi]),
        ("summary (previous)", NAIVE_SUMMARY, [LARGEST, prev, lo]),
        ("timeseries DAY", NAIVE_TIMESERIES, [LARGEST, lo, hi, LARGEST_TZ]),
        ("PAGE", NAIVE_PAGE, [LARGEST, lo, hi]),
    ]
    for dim, value in SESSION_VALUE.items():
        out.append((dim, NAIVE_SESSION_DIM.format(value=value), [LARGEST, lo, hi]))
    out += [("realtime", NAIVE_REALTIME, [LARGEST]), ("realtime top pages", NAIVE_TOP_PAGES,
                                                      [LARGEST])]  # fmt: skip
    return out


async def run_naive(dsn: str, lo: datetime, hi: datetime) -> tuple[float, dict[str, Any]]:
    """Seconds for all naive widgets in sequence, and their answers."""
    conn = await asyncpg.connect(dsn)
    answers: dict[str, Any] = {}
    t0 = time.perf_counter()
    for name, sql, args in naive_widgets(lo, hi):
        answers[name] = await conn.fetch(sql, *args)
    elapsed = time.perf_counter() - t0
    await conn.close()
    return elapsed, answers


def check(data: dict[str, Any], naive: dict[str, Any]) -> list[str]:
    """Differences between the GraphQL answer and the naive one (empty: they agree)."""
    bad = []
    stats = data["website"]["stats"]
    s, n = stats["summary"], naive["summary"][0]
    for field, want in (("pageviews", n["pageviews"]), ("events", n["events"]),
                        ("visitors", n["visitors"]), ("visits", n["visits"])):  # fmt: skip
        if s[field] != want:
            bad.append(f"summary.{field}: {s[field]} != {want}")
    if abs(s["visitDuration"] - float(n["duration"])) > 1e-6 * max(1, float(n["duration"])):
        bad.append(f"summary.visitDuration {s['visitDuration']} != {n['duration']}")
    if stats["summary"]["previous"]["visitors"] != naive["summary (previous)"][0]["visitors"]:
        bad.append("summary.previous.visitors")
    days = stats["timeseries"]
    if [d["pageviews"] for d in days] != [r["pageviews"] for r in naive["timeseries DAY"]]:
        bad.append("timeseries pageviews")
    for dim in DIMS:
        got = stats[dim.lower()]
        want = naive[dim]
        if [(r["value"], r["visitors"]) for r in got["rows"]] != [
            (r["value"], r["visitors"]) for r in want
        ]:
            bad.append(f"{dim} rows")
        if want and got["totalRows"] != want[0]["total"]:
            bad.append(f"{dim} totalRows {got['totalRows']} != {want[0]['total']}")
    return bad


# ---------------------------------------------------------------- the server side


def server_env(dsn: str) -> dict[str, str]:
    env = {"DATABASE_URL": dsn, "JWT_SECRET": JWT, "WORKER_COUNT": "1",
           "GRAPHQL_COST_PER_MINUTE": "0", "STATEMENT_TIMEOUT": "60s"}  # fmt: skip
    os.environ.pop("REDIS_URL", None)
    return env


def auth_headers() -> dict[str, str]:
    settings = Settings(jwt_secret=Secret(JWT))
    token = create_token(settings, subject="bench", websites="*", scope="admin", ttl_seconds=3600)
    return {"Authorization": f"Bearer {token}"}


def post(client: httpx.Client, url: str) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    r = client.post(url + "/graphql", json={"query": QUERY, "variables": {"id": LARGEST}})
    elapsed = time.perf_counter() - t0
    body = r.json()
    if r.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"dashboard request failed: {r.status_code} {str(body)[:500]}")
    return elapsed, body["data"]


def run_server(dsn: str, cold: int, warm: int) -> dict[str, Any]:
    """Cold samples (a new server each), then warm repeats on the last server."""
    colds: list[float] = []
    warms: list[float] = []
    rss = xacts = 0.0
    data: dict[str, Any] = {}
    for i in range(cold):
        with Server(server_env(dsn)) as server, httpx.Client(headers=auth_headers(),
                                                              timeout=120) as client:  # fmt: skip
            elapsed, data = post(client, server.url)
            colds.append(elapsed)
            if i == cold - 1:
                before = asyncio.run(transactions(dsn))
                for _ in range(warm):
                    warms.append(post(client, server.url)[0])
                time.sleep(1.2)  # PostgreSQL flushes its statistics at most once a second
                xacts = (asyncio.run(transactions(dsn)) - before - 1) / max(warm, 1)
            rss = max([rss, *server.worker_rss_mb()])
    return {"cold": colds, "warm": warms, "rss": rss, "data": data, "xacts": xacts}


async def transactions(dsn: str) -> int:
    """Committed transactions of the database so far (pg_stat_database)."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"))  # fmt: skip
    finally:
        await conn.close()


# ---------------------------------------------------------------- EXPLAIN capture


def _log_end() -> tuple[str | None, int]:
    """PostgreSQL's current log file and its size."""
    logs = sorted(glob.glob("/var/log/postgresql/postgresql-*.log"), key=os.path.getmtime)
    return (logs[-1], os.path.getsize(logs[-1])) if logs else (None, 0)


def _read_from(log: str | None, offset: int) -> str:
    if log is None:
        return ""
    with open(log, encoding="utf-8", errors="replace") as f:
        f.seek(offset)
        return f.read()


async def explain(ds: Dataset, path: str) -> None:
    """EXPLAIN ANALYZE (auto_explain) of every statement of one cold dashboard request."""
    name = ds.dsn.rsplit("/", 1)[1]
    admin = await asyncpg.connect(ds.dsn)
    settings = {"session_preload_libraries": "auto_explain",
                "auto_explain.log_min_duration": "0", "auto_explain.log_analyze": "on",
                "auto_explain.log_buffers": "on", "auto_explain.log_nested_statements": "on"}  # fmt: skip
    for k, v in settings.items():
        await admin.execute(f"ALTER DATABASE \"{name}\" SET {k} = '{v}'")
    log, offset = await asyncio.to_thread(_log_end)
    try:
        with Server(server_env(ds.dsn)) as server, httpx.Client(headers=auth_headers(),
                                                                timeout=120) as client:  # fmt: skip
            post(client, server.url)
    finally:
        for k in settings:
            await admin.execute(f'ALTER DATABASE "{name}" RESET {k}')
        await admin.close()
    text = await asyncio.to_thread(_read_from, log, offset)
    plans = [block for block in text.split("LOG:  duration: ")[1:] if "plan:" in block]
    plans = [p for p in plans if "events" in p or "sessions" in p]
    head = (f"# auto_explain of one cold dashboard request ({ds.size} dataset, {LARGEST}, "
            f"LAST_30_DAYS), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n")  # fmt: skip
    ordered = sorted(plans, key=lambda b: -float(b.split(" ms", 1)[0]))
    body = "".join("duration: " + p.rstrip() + "\n\n" for p in ordered)
    await asyncio.to_thread(Path(path).write_text, head + body, "utf-8")
    print(f"{len(plans)} plans written to {path}")


# ---------------------------------------------------------------- main


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}" if seconds >= 0.01 else f"{seconds * 1000:.2f}"


async def store_days(dsn: str) -> float:
    """Seconds to bring the day rollup up to date (what the server's sealer does in the
    background; a new dataset takes minutes, later runs only the days since)."""
    t0 = time.perf_counter()
    pool = await create_pool(dsn, max_size=2, statement_timeout=3600)  # the service's settings
    try:
        while await seal_all(pool, Settings().retention_days, budget=600):
            pass
        # what autovacuum does in a while (it is off on the bench machine): visibility
        # maps, so that visitor-number probes read the index alone
        await pool.execute(f"VACUUM (ANALYZE) {', '.join(DAY_TABLES)}")
    finally:
        await pool.close()
    return time.perf_counter() - t0


async def measure(ds: Dataset, cold: int, warm: int, naive_runs: int) -> dict[str, Any]:
    print(f"{ds.size}: day rollup up to date after {await store_days(ds.dsn):.0f} s", flush=True)
    lo, hi = preset_range("LAST_30_DAYS", LARGEST_TZ, datetime.now(UTC))
    conn = await asyncpg.connect(ds.dsn)
    events = await conn.fetchval(
        "SELECT count(*) FROM events WHERE website_id = $1 AND ts >= $2 AND ts < $3",
        LARGEST,
        lo,
        hi,
    )
    await conn.close()
    naive = [await run_naive(ds.dsn, lo, hi) for _ in range(naive_runs)]
    srv = await asyncio.to_thread(run_server, ds.dsn, cold, warm)
    diffs = check(srv["data"], naive[0][1])
    return {"events": events, "naive": [n[0] for n in naive], "diffs": diffs, **srv}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cold", type=int, default=2, help="cold samples (a new server each)")
    ap.add_argument("--warm", type=int, default=50, help="warm repeats")
    ap.add_argument("--naive", type=int, default=2, help="runs of the naive SQL")
    ap.add_argument("--explain", metavar="PATH", help="write auto_explain plans to PATH")
    args = ap.parse_args()
    big, small = await ensure("10m"), await ensure("1m")
    results = {}
    for ds in (big, small):
        results[ds.size] = await measure(ds, args.cold, args.warm, args.naive)
    rows = []
    for ds in (big, small):
        r = results[ds.size]
        cold = statistics.median(r["cold"])
        naive = statistics.median(r["naive"])
        warm = sorted(r["warm"])
        rows.append([
            f"{ds.size} ({r['events']:,} events of {LARGEST} in range)",
            f"{fmt_ms(naive)} (first {fmt_ms(r['naive'][0])})",
            f"{fmt_ms(cold)} (first {fmt_ms(r['cold'][0])})",
            f"{cold / naive:.2f}",
            f"{fmt_ms(statistics.median(warm))} / {fmt_ms(warm[int(len(warm) * 0.95) - 1])}",
            f"{r['xacts']:.1f}",
            f"{r['rss']:.0f}",
            "yes" if not r["diffs"] else "NO: " + "; ".join(r["diffs"]),
        ])  # fmt: skip
    print(table(["dataset", "naive SQL, 12 statements (ms)", "GraphQL cold (ms)",
                 "cold ÷ naive", "GraphQL warm p50 / p95 (ms)", "SQL txns per warm request",
                 "server RSS (MB)",
                 "same numbers"], rows))  # fmt: skip
    cb, cs = statistics.median(results["10m"]["cold"]), statistics.median(results["1m"]["cold"])
    nb, ns = statistics.median(results["10m"]["naive"]), statistics.median(results["1m"]["naive"])
    print(f"\n10× data: GraphQL cold {cb / cs:.1f}× the time, naive SQL {nb / ns:.1f}×")
    print(TARGETS)
    print(f"cold samples (ms): 10m {[round(x * 1000) for x in results['10m']['cold']]}, "
          f"1m {[round(x * 1000) for x in results['1m']['cold']]}")  # fmt: skip
    if args.explain:
        await explain(big, args.explain)


if __name__ == "__main__":
    asyncio.run(main())
