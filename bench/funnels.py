"""Funnel benchmark on the 10M-event dataset (``site-001``, ~1.2M events in 30 days).

    python -m bench.funnels [--cold 3] [--baseline REV]

* one funnel: ``funnel(id) { report(range: LAST_30_DAYS) }`` of the 4-step ORDERED funnel
  ``/`` → ``/product/*`` → ``add_to_cart`` → ``/checkout`` (1-day window), cold = the
  first request of a freshly started server (a new process per sample; reports are not
  cached); PostgreSQL's buffers as they are;
* ``compareFunnels`` of the 5 funnels of ``bench.dataset.FUNNELS`` in one request;
* the report statement alone (``db.queries.funnel_report.counts``, no HTTP; best of 2)
  for the 4 steps in every ordering × counting unit, and with ``--baseline REV`` the same
  statements of ``db/queries/funnel_report.py`` as of git revision REV (read with
  ``git show``), whose answers must be identical.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from bench.common import ROOT, Server, table
from bench.dashboard import auth_headers, server_env
from bench.dataset import FUNNELS, LARGEST_TZ, ensure
from db.pool import create_pool
from db.queries import funnel_report
from db.queries.funnels import get_many
from resolvers.funnel_report import spec_of
from resolvers.ranges import preset_range

ONE = "shop (ordered)"
FIELDS = """entered converted conversionRate
  steps { name reached conversionFromStart conversionFromPrevious dropped }
  timeToConvert { mean median histogram { upTo count } }"""
REPORT = f"""query($id: ID!) {{ funnel(id: $id) {{
  report(range: {{preset: LAST_30_DAYS}}) {{ {FIELDS} }} }} }}"""
COMPARE = f"""query($ids: [ID!]!) {{ compareFunnels(ids: $ids, range: {{preset: LAST_30_DAYS}})
  {{ funnel {{ id }} {FIELDS} }} }}"""
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


def load_revision(rev: str) -> ModuleType:
    """``db/queries/funnel_report.py`` as of git revision ``rev`` (read-only ``git show``)."""
    src = subprocess.run(["git", "show", f"{rev}:db/queries/funnel_report.py"], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "funnel_report_baseline.py"
    path.write_text(src, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("funnel_report_baseline", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a PostgreSQL backend on this machine (0 if unknown)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def timed(
    pool: Any, pid: int, module: ModuleType, spec: Any, lo: Any, hi: Any
) -> tuple[float, float, Any]:
    """Best (wall s, backend CPU s) of 2 runs of ``module.counts``, and its answer."""
    best, answer = (1e9, 1e9), None
    for _ in range(2):
        c0, t0 = backend_cpu(pid), time.perf_counter()
        answer = await module.counts(pool, spec, lo, hi)
        best = min(best, (time.perf_counter() - t0, backend_cpu(pid) - c0))
    return best[0], best[1], answer


async def statements(dsn: str, fid: str, baseline: ModuleType | None) -> list[list[str]]:
    """counts() of the 4-step funnel in every mode: new and (optionally) baseline SQL.
    One connection, parallel query off, so that its backend's CPU time is the whole cost
    (wall time on a shared 2-core machine is noisy; CPU time much less so)."""
    pool = await create_pool(dsn, max_size=1, statement_timeout=300)
    pid = int(await pool.fetchval("SELECT pg_backend_pid()"))
    for module in (funnel_report, baseline):
        if module is not None:
            module._SESSION += "; SET LOCAL max_parallel_workers_per_gather = 0"
    [row] = await get_many(pool, [fid])
    assert row is not None
    lo, hi = preset_range("LAST_30_DAYS", LARGEST_TZ, datetime.now(UTC))
    out = []
    for ordering in ("ORDERED", "STRICT", "ANY"):
        for count_by in ("VISITOR", "SESSION"):
            spec = replace(spec_of(row), ordering=ordering, count_by=count_by)
            wall, cpu, got = await timed(pool, pid, funnel_report, spec, lo, hi)
            cells = [f"{ordering} × {count_by}", f"{wall * 1000:,.0f} / {cpu * 1000:,.0f}"]
            if baseline is not None:
                old_spec = baseline.FunnelSpec(**spec.__dict__ | {"steps": tuple(
                    baseline.StepMatch(s.kind, s.value, s.properties) for s in spec.steps)})  # fmt: skip
                o_wall, o_cpu, old = await timed(pool, pid, baseline, old_spec, lo, hi)
                cells.append(f"{o_wall * 1000:,.0f} / {o_cpu * 1000:,.0f}")
                cells.append(f"{cpu / o_cpu:.2f}" if o_cpu else "")
                same = (old.reached, old.histogram) == (got.reached, got.histogram) and all(
                    (a is None and b is None) or (a is not None and b is not None
                                                  and abs(a - b) < 1e-6)
                    for a, b in ((old.mean, got.mean), (old.median, got.median))
                )  # fmt: skip
                cells.append("yes" if same else f"NO: {old.reached} vs {got.reached}")
            cells.append(" → ".join(f"{n:,}" for n in got.reached))
            out.append(cells)
    await pool.close()
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cold", type=int, default=3, help="cold samples (a new server each)")
    ap.add_argument("--baseline", metavar="REV", help="also time the SQL of this git revision")
    args = ap.parse_args()
    ds = await ensure("10m")
    one_id = ds.funnels[ONE]
    ids = [ds.funnels[name] for name in FUNNELS]
    one = [await asyncio.to_thread(cold_request, ds.dsn, REPORT, {"id": one_id})
           for _ in range(args.cold)]  # fmt: skip
    many = [await asyncio.to_thread(cold_request, ds.dsn, COMPARE, {"ids": ids})
            for _ in range(args.cold)]  # fmt: skip
    t_one = statistics.median(t for t, _ in one)
    t_many = statistics.median(t for t, _ in many)
    report = one[0][1]["funnel"]["report"]
    steps = " → ".join(f"{s['reached']:,}" for s in report["steps"])
    print(table(["request (cold, new server each)", "median (ms)", "samples (ms)", "÷ one funnel"], [
        [f"one 4-step ORDERED funnel, LAST_30_DAYS (reached {steps})", f"{t_one * 1000:,.0f}",
         ", ".join(f"{t * 1000:,.0f}" for t, _ in one), "1.00"],
        [f"compareFunnels, {len(ids)} funnels", f"{t_many * 1000:,.0f}",
         ", ".join(f"{t * 1000:,.0f}" for t, _ in many), f"{t_many / t_one:.2f}"],
    ]))  # fmt: skip
    print(TARGETS)
    baseline = load_revision(args.baseline) if args.baseline else None
    rows = await statements(ds.dsn, one_id, baseline)
    head = ["4-step funnel, report statement only", "now: wall / CPU (ms)"]
    if baseline is not None:
        head += [f"{args.baseline}: wall / CPU (ms)", "CPU now ÷ before", "same answer"]
    print()
    print(table([*head, "reached per step"], rows))


if __name__ == "__main__":
    asyncio.run(main())
