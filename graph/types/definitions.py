"""``Query.definitions``: metrics.md as data (from resolvers/definitions.py)."""

from __future__ import annotations

from enum import Enum

import strawberry

from resolvers import definitions as d


@strawberry.enum(description="What a metric is computed from.")
class MetricKind(Enum):
    EVENT = "EVENT"
    SESSION = "SESSION"
    REALTIME = "REALTIME"
    DERIVED = "DERIVED"


@strawberry.enum(description="The unit of a metric.")
class MetricUnit(Enum):
    COUNT = "count"
    PERCENT = "percent"
    SECONDS = "seconds"
    RATIO = "ratio"


@strawberry.type(description="One metric of metrics.md, as data.")
class MetricDefinition:
    name: str = strawberry.field(description="The field name used in Summary/BreakdownRow.")
    description: str = strawberry.field(description="The definition.")
    unit: MetricUnit = strawberry.field(description="count, percent, seconds or ratio.")
    kind: MetricKind = strawberry.field(
        description="EVENT: events with ts in range; SESSION: sessions whose first event is in "
        "range; REALTIME: last 5 minutes; DERIVED: computed from other metrics."
    )


def all_definitions() -> list[MetricDefinition]:
    return [
        MetricDefinition(name=m.name, description=m.description, unit=MetricUnit(m.unit),
                         kind=MetricKind(m.kind))
        for m in d.METRICS
    ]  # fmt: skip
