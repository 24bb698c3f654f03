"""Stats operations (metrics.md): summary, comparison, time series and breakdowns.

Callers ask for ``StatsKey`` values (a scope — website, range, zone, filters — and a
shape). :func:`load_stats` answers a whole batch of keys, as a DataLoader batch
function: cached answers first, then the misses grouped so that keys sharing filters
and a query shape share ONE statement (``db.queries.stats.scan``):

* all shapes of one scope (summary + time series + breakdowns) → one statement;
* the same shapes for N websites or N ranges (``websites { stats { summary } }``,
  a comparison's previous period of N websites) → one statement.

A dashboard (summary with compare, a time series, any number of breakdowns) is
therefore 2 statements: the current scope's and the previous period's summary.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from db.errors import DatabaseUnavailable, QueryTimeout
from db.queries.dimensions import EVENT_DIMENSIONS
from db.queries.stats import DimensionSpec, InvalidPattern, ScanPlan, ScanRow
from resolvers import counters, stats_days
from resolvers.definitions import (
    LATE_DATA_HORIZON_SECONDS,
    LIVE_CACHE_SECONDS,
    SETTLED_CACHE_SECONDS,
)
from resolvers.errors import ServiceUnavailable, UserError
from resolvers.ranges import Buckets, Range
from resolvers.runtime import Runtime
from resolvers.stats_plans import MAIN, Shape, part_of, plan_batch
from resolvers.stats_types import (
    Breakdown,
    BreakdownRow,
    Bucket,
    Result,
    Scope,
    StatsKey,
    Summary,
    decode,
    encode,
)

# --------------------------------------------------------------------------- assembly


def _visit_numbers(row: ScanRow | None) -> tuple[int, float, float]:
    """(visits, bounceRate %, visitDuration s) of a merged row."""
    visits = (row.visits or 0) if row else 0
    if row is None or not visits:
        return 0, 0.0, 0.0
    return visits, 100.0 * (row.bounces or 0) / visits, (row.duration or 0.0) / visits


def _summary(row: ScanRow | None) -> Summary:
    visits, bounce_rate, duration = _visit_numbers(row)
    if row is None:
        return Summary()
    return Summary(
        pageviews=row.pageviews or 0, events=row.events or 0, visitors=row.visitors or 0,
        visits=visits, bounce_rate=bounce_rate, visit_duration=duration,
        views_per_visit=(row.session_pageviews or 0) / visits if visits else 0.0,
    )  # fmt: skip


def _timeseries(rows: list[ScanRow], rng: Range, interval: str) -> list[Bucket]:
    buckets = Buckets(rng, interval)
    out = [Bucket(start=s) for s in buckets.local_starts()]
    for row in rows:
        if row.bucket is None:
            continue
        i = buckets.index(row.bucket)
        if i is None or i >= len(out):
            continue
        visits, bounce_rate, duration = _visit_numbers(row)
        b = out[i]
        b.pageviews, b.visitors = row.pageviews or 0, row.visitors or 0
        b.visits, b.bounce_rate, b.visit_duration = visits, bounce_rate, duration
    return out


def _breakdown(rows: list[ScanRow], key: StatsKey, total_visitors: int) -> Breakdown:
    total = rows[0].total or 0 if rows else 0
    out = Breakdown(total_rows=total)
    window = [r for r in rows if r.visitors and key.offset < r.rank <= key.offset + key.limit]
    for row in sorted(window, key=lambda r: r.rank):
        visitors = row.visitors or 0
        share = 100.0 * visitors / total_visitors if total_visitors else 0.0
        item = BreakdownRow(value=row.key or "", visitors=visitors, share=share)
        if key.dimension == "PAGE":
            item.pageviews = row.pageviews or 0
        elif key.dimension in EVENT_DIMENSIONS:
            item.events = row.events or 0
        else:
            visits, item.bounce_rate, item.visit_duration = _visit_numbers(row)
            item.visits, item.pageviews = visits, row.pageviews or 0
        out.rows.append(item)
    return out


# --------------------------------------------------------------------------- planning


def _shape_of(scope: Scope, keys: list[StatsKey]) -> Shape:
    intervals = sorted({k.interval for k in keys if k.kind == "timeseries" and k.interval})
    windows: dict[tuple[str, str | None], tuple[int, int]] = {}
    for k in keys:
        if k.kind != "breakdown" or k.dimension is None:
            continue
        spec = (k.dimension, k.property)
        lo, hi = windows.get(spec, (k.offset, k.offset + k.limit))
        windows[spec] = (min(lo, k.offset), max(hi, k.offset + k.limit))
    dims = tuple(DimensionSpec(d, p, lo, hi) for (d, p), (lo, hi) in sorted(
        windows.items(), key=lambda item: (item[0][0], item[0][1] or "")))  # fmt: skip
    zone = scope.range.zone if intervals else None
    return Shape(scope.filters, zone, tuple(intervals), dims)


def _answer(
    key: StatsKey, rows: list[ScanRow], plan: ScanPlan, summary_row: ScanRow | None
) -> Result:
    """``key``'s answer from its statement's ``rows`` for its scope; ``summary_row`` is
    the scope's summary (code 0 of the statement that computed it)."""
    by_code: dict[int, list[ScanRow]] = defaultdict(list)
    for row in rows:
        by_code[row.code].append(row)
    summary = _summary(summary_row)
    if key.kind == "summary":
        return summary
    if key.kind == "timeseries":
        code = 1 + plan.intervals.index(key.interval or "")
        return _timeseries(by_code[code], key.scope.range, key.interval or "")
    index = [(d.dimension, d.property) for d in plan.dimensions].index(
        (key.dimension or "", key.property)
    )
    return _breakdown(by_code[plan.first_dimension_code + index], key, summary.visitors)


def _error(exc: BaseException) -> Exception:
    if isinstance(exc, InvalidPattern):
        return UserError(f"filters: invalid regular expression ({exc})", ["filters"])
    if isinstance(exc, DatabaseUnavailable | QueryTimeout):
        return ServiceUnavailable(str(exc))
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


async def _compute(rt: Runtime, keys: list[StatsKey]) -> dict[StatsKey, Result | Exception]:
    by_scope: dict[Scope, list[StatsKey]] = defaultdict(list)
    for key in keys:
        by_scope[key.scope].append(key)
    groups: dict[Shape, list[Scope]] = defaultdict(list)
    for scope, scope_keys in by_scope.items():
        groups[_shape_of(scope, scope_keys)].append(scope)
    # the session rollup is exact for ranges that retention has not cut into
    rollup_since = (
        datetime.now(UTC) - timedelta(days=rt.retention_days) if rt.session_rollup else None
    )
    batch = plan_batch(groups, rollup_since)
    results = await asyncio.gather(
        *(stats_days.scan(rt, plan) for plan in batch.plans), return_exceptions=True
    )
    rows: list[dict[int, list[ScanRow]]] = []
    for result in results:
        per_scope: dict[int, list[ScanRow]] = defaultdict(list)
        for row in result if not isinstance(result, BaseException) else ():
            per_scope[row.scope].append(row)
        rows.append(per_scope)
    out: dict[StatsKey, Result | Exception] = {}
    for key in keys:
        plan_i, pos = batch.route[(key.scope, part_of(key.kind, key.dimension))]
        main_i, main_pos = batch.route[(key.scope, MAIN)]
        failed = next((r for r in (results[plan_i], results[main_i])
                       if isinstance(r, BaseException)), None)  # fmt: skip
        if failed is not None:
            out[key] = _error(failed)
            continue
        summary_row = next((r for r in rows[main_i][main_pos] if r.code == 0), None)
        out[key] = _answer(key, rows[plan_i][pos], batch.plans[plan_i], summary_row)
    return out


# --------------------------------------------------------------------------- caching


REPLICA_CACHE_SECONDS = 30


def ttl_for(rng: Range, now: datetime | None = None, *, replica: bool = False) -> int:
    """Seconds to cache an answer: long once the range ended before the late-data
    horizon, short while it touches now. Answers read from a replica may trail the
    primary by its replay lag, so they are kept at most ``REPLICA_CACHE_SECONDS``."""
    now = now or datetime.now(UTC)
    settled = rng.end <= now - timedelta(seconds=LATE_DATA_HORIZON_SECONDS)
    ttl = SETTLED_CACHE_SECONDS if settled else LIVE_CACHE_SECONDS
    return min(ttl, REPLICA_CACHE_SECONDS) if replica else ttl


async def load_stats(rt: Runtime, keys: Sequence[StatsKey]) -> list[Result | Exception]:
    """DataLoader batch function: one answer (or exception) per key, in key order."""
    unique = list(dict.fromkeys(keys))
    found: dict[StatsKey, Result] = {}
    stored_keys: dict[StatsKey, str | None] = {}
    if rt.cache is not None:
        hits = await rt.cache.lookup([(k.scope.website_id, k.digest()) for k in unique])
        for key, (stored, value) in zip(unique, hits, strict=True):
            stored_keys[key] = stored
            if value is not None:
                found[key] = decode(key.kind, value)
    missing = [k for k in unique if k not in found]
    if rt.cache is not None:
        counters.CACHE_REQUESTS.labels("hit").inc(len(unique) - len(missing))
        counters.CACHE_REQUESTS.labels("miss").inc(len(missing))
    computed = await _compute(rt, missing) if missing else {}
    if rt.cache is not None:
        now = datetime.now(UTC)
        replica = rt.pools.read is not rt.pools.write
        entries = [
            (stored, encode(value), ttl_for(key.scope.range, now, replica=replica))
            for key, value in computed.items()
            if not isinstance(value, Exception) and (stored := stored_keys.get(key))
        ]
        await rt.cache.store(entries)
    answers = {**computed, **found}
    return [answers[k] for k in keys]
