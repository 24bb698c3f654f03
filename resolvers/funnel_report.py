"""Funnel reports: per-step counts, conversion, time to convert, daily and breakdowns.

Rules (metrics.md, Funnels; the SQL is ``db/queries/funnel_report.py``):

* Subjects are visitors, or sessions when the funnel counts by SESSION.
* Every step-1 event of a subject with ``from <= ts < to`` starts an *attempt*; later
  steps may fall after ``to`` but must lie at most ``window`` seconds after that
  step-1 event (inclusive). ``session_start``/``session_end`` events are ignored.
* ORDERED: steps 1..k matched by events in strictly increasing time; anything may
  happen in between. STRICT: as ORDERED, and no other page view of the subject with
  ``t_i < ts <= t_(i+1)`` between consecutive matched steps (custom events may).
  ANY: step 1 starts the attempt; steps 2..k each have a matching event strictly
  after it and within the window, in any order (one event may satisfy several steps).
* A subject reaches the furthest step of its best attempt. ``entered`` = reached step
  1, ``converted`` = reached the last step. Per step: ``reached``,
  ``conversionFromStart`` = 100 × reached / entered, ``conversionFromPrevious`` =
  100 × reached / reached(previous) (100 for step 1; 0 when the divisor is 0),
  ``dropped`` = reached(previous) − reached (0 for step 1).
* Time to convert (seconds): per converted subject the shortest (last step − step 1)
  over its attempts (ANY: until the last of steps 2..n is done); mean and median
  (the mean of the middle two for an even count) over converted subjects; a histogram
  with fixed upper bounds (10 s … 30 days) below the window, closed by the window.
* ``daily`` and ``breakdown`` assign each subject once, to its *best attempt*: the
  deepest, ties broken by the earliest step-1 event; ``daily`` by the local date (in the
  report's time zone) of that step-1 event, every day of the range listed;
  ``breakdown`` by a dimension of the session of that step-1 event.
* ``previous``: the same funnel over the period of equal length right before ``from``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from db.queries import funnel_report as report_sql
from db.queries.dimensions import SESSION_DIMENSIONS, session_value_sql
from db.queries.funnel_sql import (
    CountBy,
    FunnelSpec,
    Ordering,
    StepKind,
    StepMatch,
    like_pattern,
)
from db.queries.funnels import FunnelRow
from resolvers.errors import UserError
from resolvers.runtime import Runtime

MAX_BREAKDOWN_LIMIT = 1000
MAX_COMPARE = 20


@dataclass(frozen=True)
class StepResult:
    name: str
    reached: int
    conversion_from_start: float
    conversion_from_previous: float
    dropped: int


@dataclass(frozen=True)
class TimeToConvert:
    """Seconds; ``histogram`` = (upper bound in seconds, converted subjects) pairs."""

    mean: float
    median: float
    histogram: list[tuple[float, int]]


@dataclass(frozen=True)
class ReportResult:
    funnel: FunnelRow
    start: datetime
    end: datetime
    timezone: str
    entered: int
    converted: int
    conversion_rate: float
    steps: list[StepResult]
    time_to_convert: TimeToConvert | None


@dataclass(frozen=True)
class DayResult:
    day: date
    entered: int
    converted: int
    conversion_rate: float


@dataclass(frozen=True)
class BreakdownResult:
    value: str
    entered: int
    converted: int
    conversion_rate: float


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def spec_of(row: FunnelRow) -> FunnelSpec:
    steps: list[StepMatch] = []
    for s in row.steps:
        kind: StepKind = s["type"]
        value = like_pattern(s["pattern"]) if kind == "PAGE" else s["pattern"]
        steps.append(StepMatch(kind, value, s.get("properties") if kind == "CUSTOM" else None))
    count_by: CountBy = "SESSION" if row.count_by == "SESSION" else "VISITOR"
    ordering: Ordering = row.ordering if row.ordering in ("STRICT", "ANY") else "ORDERED"  # type: ignore[assignment]
    return FunnelSpec(
        row.id, row.website_id, tuple(steps), timedelta(seconds=row.window_seconds),
        count_by, ordering,
    )  # fmt: skip


async def report(
    rt: Runtime, row: FunnelRow, start: datetime, end: datetime, tz: str
) -> ReportResult:
    """The funnel over ``[start, end)`` (one SQL statement)."""
    counts = await report_sql.counts(
        rt.pools.read, spec_of(row), start, end, rt.funnel_rollup
    )
    reached = counts.reached
    steps = [
        StepResult(
            name=s["name"],
            reached=reached[i],
            conversion_from_start=_pct(reached[i], reached[0]),
            conversion_from_previous=100.0 if i == 0 else _pct(reached[i], reached[i - 1]),
            dropped=0 if i == 0 else reached[i - 1] - reached[i],
        )
        for i, s in enumerate(row.steps)
    ]
    ttc = None
    if counts.mean is not None and counts.median is not None:
        ttc = TimeToConvert(counts.mean, counts.median, counts.histogram)
    return ReportResult(
        funnel=row, start=start, end=end, timezone=tz, entered=reached[0],
        converted=reached[-1], conversion_rate=_pct(reached[-1], reached[0]), steps=steps,
        time_to_convert=ttc,
    )  # fmt: skip


def previous_period(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The period of equal length right before ``start``."""
    return start - (end - start), start


def local_days(start: datetime, end: datetime, tz: str) -> list[date]:
    """Every local date that ``[start, end)`` touches in ``tz``."""
    zone = ZoneInfo(tz)
    first = start.astimezone(zone).date()
    last = (end - timedelta(microseconds=1)).astimezone(zone).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


async def daily(
    rt: Runtime, row: FunnelRow, start: datetime, end: datetime, tz: str
) -> list[DayResult]:
    """Entered/converted subjects by local date of their best attempt's step 1."""
    found = {
        d: (e, c) for d, e, c in await report_sql.daily(
            rt.pools.read, spec_of(row), start, end, tz, rt.funnel_rollup
        )
    }
    out = []
    for day in local_days(start, end, tz):
        entered, converted = found.get(day, (0, 0))
        out.append(DayResult(day, entered, converted, _pct(converted, entered)))
    return out


async def breakdown(
    rt: Runtime,
    row: FunnelRow,
    start: datetime,
    end: datetime,
    dimension: str,
    limit: int,
    offset: int,
) -> tuple[list[BreakdownResult], int]:
    """Conversion by a session dimension of the best attempt's step-1 session: rows by
    entered descending then value; and the total number of rows."""
    if dimension not in SESSION_DIMENSIONS:
        raise UserError(f"dimension: {dimension} is not a session dimension", ["dimension"])
    if not 1 <= limit <= MAX_BREAKDOWN_LIMIT:
        raise UserError(f"limit: between 1 and {MAX_BREAKDOWN_LIMIT}", ["limit"], "OUT_OF_RANGE")
    if offset < 0:
        raise UserError("offset: must not be negative", ["offset"], "OUT_OF_RANGE")
    rows, total = await report_sql.breakdown(
        rt.pools.read, spec_of(row), start, end, session_value_sql(dimension, "s"), limit, offset,
        rt.funnel_rollup,
    )
    return [BreakdownResult(v, e, c, _pct(c, e)) for v, e, c in rows], total
