"""Keys and answers of the stats operations (plain data; also the cache's codec)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal

import orjson

from db.queries.dimensions import FilterSpec
from resolvers.ranges import Range

Kind = Literal["summary", "timeseries", "breakdown"]


@dataclass(frozen=True)
class Scope:
    """What every number of one ``Website.stats`` depends on."""

    website_id: str
    range: Range
    filters: tuple[FilterSpec, ...] = ()

    def previous(self) -> Scope:
        return Scope(self.website_id, self.range.previous(), self.filters)


@dataclass(frozen=True)
class StatsKey:
    """A scope and a shape: summary, timeseries(interval) or breakdown(dimension, …)."""

    scope: Scope
    kind: Kind
    interval: str | None = None
    dimension: str | None = None
    property: str | None = None
    limit: int = 10
    offset: int = 0

    def digest(self) -> str:
        r = self.scope.range
        shape = [self.kind, r.start.isoformat(), r.end.isoformat(), r.zone,
                 [[f.dimension, f.operator, f.property, list(f.values)] for f in self.scope.filters],
                 self.interval, self.dimension, self.property, self.limit, self.offset]  # fmt: skip
        return hashlib.sha256(orjson.dumps(shape)).hexdigest()[:32]


@dataclass
class Summary:
    """Summary metrics (metrics.md); rates are percent, durations seconds."""

    pageviews: int = 0
    events: int = 0
    visitors: int = 0
    visits: int = 0
    bounce_rate: float = 0.0
    visit_duration: float = 0.0
    views_per_visit: float = 0.0


@dataclass
class Bucket:
    start: datetime  # aware, in the query's zone
    pageviews: int = 0
    visitors: int = 0
    visits: int = 0
    bounce_rate: float = 0.0
    visit_duration: float = 0.0


@dataclass
class BreakdownRow:
    value: str
    visitors: int
    share: float
    pageviews: int | None = None
    visits: int | None = None
    events: int | None = None
    bounce_rate: float | None = None
    visit_duration: float | None = None


@dataclass
class Breakdown:
    rows: list[BreakdownRow] = field(default_factory=list)
    total_rows: int = 0


Result = Summary | list[Bucket] | Breakdown


def change(current: Summary, previous: Summary) -> dict[str, float | None]:
    """Per Summary field ``100 × (current − previous) / previous``; None when previous
    is 0."""
    out: dict[str, float | None] = {}
    for f in fields(Summary):
        before, now = float(getattr(previous, f.name)), float(getattr(current, f.name))
        out[f.name] = None if before == 0 else 100.0 * (now - before) / before
    return out


def encode(result: Result) -> bytes:
    if isinstance(result, Summary):
        return orjson.dumps(result.__dict__)
    if isinstance(result, Breakdown):
        return orjson.dumps({"rows": [r.__dict__ for r in result.rows], "total": result.total_rows})
    return orjson.dumps([b.__dict__ for b in result])


def decode(kind: Kind, data: bytes) -> Result:
    raw: Any = orjson.loads(data)
    if kind == "summary":
        return Summary(**raw)
    if kind == "breakdown":
        return Breakdown([BreakdownRow(**r) for r in raw["rows"]], raw["total"])
    return [Bucket(**{**b, "start": datetime.fromisoformat(b["start"])}) for b in raw]
