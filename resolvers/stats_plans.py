"""Which statements answer one batch of stats keys (per request, per dataloader batch).

Keys are grouped by scope, scopes by *shape* (filters, zone, intervals, dimensions):
one statement per shape, whatever the number of breakdown fields. Two refinements, so
that a dashboard's work spreads over two connections (two cores) without more than
three statements:

* a shape with event dimensions (PAGE, EVENT, PROPERTY) besides anything else is
  split: its event dimensions need their own pass over every event in range, while
  the rest reads the session rollup, so they run as two statements at once;
* that event part joins a summary-only shape with the same filters (the previous
  period of ``summary(compare: true)``) in one statement: ``ScanScope.main`` /
  ``ScanScope.events`` switch each part off for the scopes of the other.

A full dashboard is then: main part, event part + previous period, realtime — three
statements; ``websites { stats { summary } }`` for N websites stays one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from db.queries.dimensions import EVENT_DIMENSIONS, FilterSpec
from db.queries.stats import DimensionSpec, ScanPlan, ScanScope
from resolvers.stats_types import Scope

MAIN, EVENTS = "main", "events"


@dataclass(frozen=True)
class Shape:
    """Everything a statement computes for each of its scopes."""

    filters: tuple[FilterSpec, ...]
    zone: str | None
    intervals: tuple[str, ...]
    dimensions: tuple[DimensionSpec, ...]


@dataclass
class Batch:
    """The plans, and for each (scope, part) the plan and the scope's position in it."""

    plans: list[ScanPlan] = field(default_factory=list)
    route: dict[tuple[Scope, str], tuple[int, int]] = field(default_factory=dict)

    def add(self, plan: ScanPlan, scopes: list[tuple[Scope, str]]) -> None:
        index = len(self.plans)
        self.plans.append(plan)
        for position, (scope, part) in enumerate(scopes):
            self.route[(scope, part)] = (index, position)


def part_of(kind: str, dimension: str | None) -> str:
    """The part that answers a key: ``EVENTS`` for a breakdown by an event dimension."""
    return EVENTS if kind == "breakdown" and dimension in EVENT_DIMENSIONS else MAIN


def _scan_scope(scope: Scope, *, main: bool = True, events: bool = True) -> ScanScope:
    return ScanScope(scope.website_id, scope.range.start, scope.range.end, main, events)


def plan_batch(groups: dict[Shape, list[Scope]], rollup_since: datetime | None) -> Batch:
    """The statements for ``groups`` (shape → its scopes); see the module docstring.
    A scope's event-dimension keys are routed to part ``EVENTS``, all others to
    ``MAIN`` (which also holds the scope's summary)."""
    batch = Batch()
    event_parts: list[tuple[Shape, list[Scope]]] = []
    for shape, scopes in groups.items():
        event = tuple(d for d in shape.dimensions if d.dimension in EVENT_DIMENSIONS)
        rest = tuple(d for d in shape.dimensions if d.dimension not in EVENT_DIMENSIONS)
        if event and (rest or shape.intervals):
            main = replace(shape, dimensions=rest)
            event_parts.append((Shape(shape.filters, None, (), event), scopes))
        else:
            main = shape
        batch.add(_plan(main, [_scan_scope(s) for s in scopes], rollup_since),
                  [(s, MAIN) for s in scopes])  # fmt: skip
        if main is shape:  # event dimensions, if any, come with everything else
            for s in scopes:
                batch.route[(s, EVENTS)] = batch.route[(s, MAIN)]
    return _pair(batch, event_parts, rollup_since)


def _plan(shape: Shape, scopes: list[ScanScope], rollup_since: datetime | None) -> ScanPlan:
    return ScanPlan(tuple(scopes), shape.filters, shape.zone, shape.intervals,
                    shape.dimensions, rollup_since)  # fmt: skip


def _pair(
    batch: Batch, event_parts: list[tuple[Shape, list[Scope]]], rollup_since: datetime | None
) -> Batch:
    """Move each event part into the statement of a summary-only shape with the same
    filters (replacing that shape's own statement), or give it one of its own."""
    for part, scopes in event_parts:
        partner = next(
            (i for i, plan in enumerate(batch.plans)
             if not plan.intervals and not plan.dimensions and plan.filters == part.filters
             and all(s.events for s in plan.scopes)),
            None,
        )  # fmt: skip
        mine = [_scan_scope(s, main=False) for s in scopes]
        if partner is None:
            batch.add(_plan(part, mine, rollup_since), [(s, EVENTS) for s in scopes])
            continue
        theirs = [replace(s, events=False) for s in batch.plans[partner].scopes]
        batch.plans[partner] = _plan(part, theirs + mine, rollup_since)
        for position, scope in enumerate(scopes, start=len(theirs)):
            batch.route[(scope, EVENTS)] = (partner, position)
    return batch
