"""Funnel benchmark on the 10M-event dataset (``site-001``, ~1.2M events in 30 days).

    python -m bench.funnels [--cold 3]

* first the funnel attempt rollup is brought up to date, as the service's background
  pass keeps it (``resolvers/funnel_rollup.py``; the time it took is printed: the
  whole build on a new dataset, next to nothing later);
* one funnel: ``funnel(id) { report(range: LAST_30_DAYS) }`` of the 4-step ORDERED funnel
  ``/`` → ``/product/*`` → ``add_to_cart`` → ``/checkout`` (1-day window), cold = the
  first request of a freshly started server (a new process per sample; reports are not
  cached); PostgreSQL's buffers as they are;
* ``compareFunnels`` of the 5 funnels of ``bench.dataset.FUNNELS`` in one request;
* the first funnel's page: its report with the daily series and a SOURCE breakdown;
* the report statement alone (``db.queries.funnel_report.counts``, no HTTP; best of 2)
  of each of the 5 funnels from events only and with the rollup, whose answers must be
  identical.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import Server, table
from bench.dashboard import auth_headers, server_env
from bench.dataset import FUNNELS, LARGEST_TZ, ensure
from db.pool import create_pool
from db.queries import funnel_report
from db.queries.funnels import get_many
from graph.settings import Settings
from resolvers.funnel_report import spec_of
from resolvers.funnel_rollup import seal_all
from resolvers.ranges import preset_range

ONE = "shop (ordered)"
FIELDS = """entered converted conversionRate
  steps { name reached conversionFromStart conversionFromPrevious dropped }
  timeToConvert { mean median histogram { upTo count } }"""
REPORT = f"""query($id: ID!) {{ funnel(id: $id) {{
  report(range: {{preset: LAST_30_DAYS}}) {{ {FIELDS} }} }} }}"""
COMPARE = f"""query($ids: [ID!]!) {{ compareFunnels(ids: $ids, range: {{preset: LAST_30_DAYS}})
  {{ funnel {{ id }} {FIELDS} }} }}"""
#: A funnel's page: the report with its daily series and a breakdown (three statements)
PAGE = f"""query($id: ID!) {{ funnel(id: $id) {{ report(range: {{preset: LAST_30_DAYS}}) {{
  {FIELDS} daily {{ date entered converted }}
  breakdown(dimension: SOURCE) {{ rows {{ value entered converted }} totalRows }} }} }} }}"""
TARGETS = "targets: one funnel cold ≤ 500 ms; 5 funnels in one compareFunnels ≤ 2 × one funnel"


def cold_request(dsn: str, query: str, variables: dict[str, Any]) -> tuple[float, Any]:
    """Seconds of the first request of a new server process, and its data."""
    with Server(server_env(dsn)) as server, httpx.Client(headers=auth_headers(),
                                                          timeout=300) as client:  # fmt: skip
        t0 = time.perf_counter()
        r = client.post(server.url + "/graphql", json={"query": query, "variables": variables})
        elapsed = time.perf_counter() - t0
    body = r.json()
    if r.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"request failed: {r.status_code} {str(body)[:500]}")
    return elapsed, body["data"]


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a PostgreSQL backend on this machine (0 if unknown)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def timed(
    pool: Any, pid: int, spec: Any, lo: Any, hi: Any, rollup: bool
) -> tuple[float, float, Any]:
    """Best (wall s, backend CPU s) of 2 runs of ``counts``, and its answer."""
    best, answer = (1e9, 1e9), None
    for _ in range(2):
        c0, t0 = backend_cpu(pid), time.perf_counter()
        answer = await funnel_report.counts(pool, spec, lo, hi, rollup)
        best = min(best, (time.perf_counter() - t0, backend_cpu(pid) - c0))
    return best[0], best[1], answer


async def statements(dsn: str, ids: dict[str, str]) -> list[list[str]]:
    """counts() of every bench funnel from events only and with the attempt rollup.
    One connection, parallel query off, so that its backend's CPU time is the whole cost
    (wall time on a shared 2-core machine is noisy; CPU time much less so)."""
    pool = await create_pool(dsn, max_size=1, statement_timeout=300)
    pid = int(await pool.fetchval("SELECT pg_backend_pid()"))
    funnel_report._SESSION += "; SET LOCAL max_parallel_workers_per_gather = 0"
    lo, hi = preset_range("LAST_30_DAYS", LARGEST_TZ, datetime.now(UTC))
    out = []
    for name, fid in ids.items():
        [row] = await get_many(pool, [fid])
        assert row is not None
        spec = spec_of(row)
        r_wall, r_cpu, raw = await timed(pool, pid, spec, lo, hi, False)
        wall, cpu, got = await timed(pool, pid, spec, lo, hi, True)
        same = (raw.reached, raw.histogram) == (got.reached, got.histogram) and all(
            (a is None and b is None) or (a is not None and b is not None and abs(a - b) < 1e-6)
            for a, b in ((raw.mean, got.mean), (raw.median, got.median))
        )  # fmt: skip
        out.append([
            f"{name} ({spec.ordering}, {spec.count_by}, window {spec.window})",
            f"{r_wall * 1000:,.0f} / {r_cpu * 1000:,.0f}", f"{wall * 1000:,.0f} / {cpu * 1000:,.0f}",
            f"{cpu / r_cpu:.2f}" if r_cpu else "", "yes" if same else f"NO: {raw} vs {got}",
            " → ".join(f"{n:,}" for n in got.reached),
        ])  # fmt: skip
    await pool.close()
    return out


async def catch_up(dsn: str) -> float:
    """Seal every funnel's attempts as the service's background pass does, and VACUUM
    ANALYZE the stored attempts as autovacuum does after many inserts; seconds taken."""
    pool = await create_pool(dsn, max_size=2, statement_timeout=3600)
    t0 = time.perf_counter()
    while await seal_all(pool, Settings().retention_days, budget=3600):
        pass
    await pool.execute("VACUUM ANALYZE funnel_attempts, funnel_attempt_counts, funnel_rollups")
    await pool.close()
    return time.perf_counter() - t0


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cold", type=int, default=3, help="cold samples (a new server each)")
    args = ap.parse_args()
    ds = await ensure("10m")
    print(f"funnel attempt rollup caught up in {await catch_up(ds.dsn):.1f} s")
    one_id = ds.funnels[ONE]
    ids = [ds.funnels[name] for name in FUNNELS]
    one = [await asyncio.to_thread(cold_request, ds.dsn, REPORT, {"id": one_id})
           for _ in range(args.cold)]  # fmt: skip
    many = [await asyncio.to_thread(cold_request, ds.dsn, COMPARE, {"ids": ids})
            for _ in range(args.cold)]  # fmt: skip
    page = [await asyncio.to_thread(cold_request, ds.dsn, PAGE, {"id": one_id})
            for _ in range(args.cold)]  # fmt: skip
    t_one = statistics.median(t for t, _ in one)
    t_many = statistics.median(t for t, _ in many)
    t_page = statistics.median(t for t, _ in page)
    report = one[0][1]["funnel"]["report"]
    steps = " → ".join(f"{s['reached']:,}" for s in report["steps"])
    print(table(["request (cold, new server each)", "median (ms)", "samples (ms)", "÷ one funnel"], [
        [f"one 4-step ORDERED funnel, LAST_30_DAYS (reached {steps})", f"{t_one * 1000:,.0f}",
         ", ".join(f"{t * 1000:,.0f}" for t, _ in one), "1.00"],
        [f"compareFunnels, {len(ids)} funnels", f"{t_many * 1000:,.0f}",
         ", ".join(f"{t * 1000:,.0f}" for t, _ in many), f"{t_many / t_one:.2f}"],
        ["the same funnel's page: report + daily + SOURCE breakdown", f"{t_page * 1000:,.0f}",
         ", ".join(f"{t * 1000:,.0f}" for t, _ in page), f"{t_page / t_one:.2f}"],
    ]))  # fmt: skip
    print(TARGETS)
    rows = await statements(ds.dsn, {name: ds.funnels[name] for name in FUNNELS})
    print()
    print(table(["report statement only, LAST_30_DAYS", "events only: wall / CPU (ms)",
                 "with rollup: wall / CPU (ms)", "CPU ÷", "same answer", "reached per step"],
                rows))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
