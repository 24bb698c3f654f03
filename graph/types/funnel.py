"""Funnels: definitions, reports, comparison (metrics.md, Funnels).

Definitions are validated in ``resolvers/funnels.py``, reports computed in
``resolvers/funnel_report.py`` (one SQL statement each); their types are in
``graph/types/funnel_report.py``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from aiodataloader import DataLoader
from strawberry.scalars import JSON
from strawberry.types import Info

from db.queries.funnels import FunnelRow
from graph.context import Context
from graph.types.common import DeletePayload, UserError, attempt, deleted
from graph.types.funnel_inputs import (
    ORDERING_RULES,
    CreateFunnelInput,
    DeleteFunnelInput,
    FunnelCount,
    FunnelOrdering,
    FunnelStepInput,
    FunnelStepType,
    UpdateFunnelInput,
)
from graph.types.funnel_report import FunnelReport, report_of
from graph.types.ranges import RangeArg, RangeInput, TimeZoneArg, graphql_errors, to_range
from resolvers import funnel_report as report_ops
from resolvers import funnels as ops
from resolvers.errors import UserError as UserErrorExc

if TYPE_CHECKING:
    from graph.types.website import Website


@strawberry.type(description="One step of a funnel.")
class FunnelStep:
    name: str = strawberry.field(description="Display name (1–100 characters).")
    type: FunnelStepType = strawberry.field(description="What the step matches.")
    pattern: str = strawberry.field(
        description="PAGE: path pattern (`*` wildcard, anchored); CUSTOM: event name; "
        "EVENT: the tracker's CSS selector."
    )
    properties: JSON | None = strawberry.field(
        description="CUSTOM only: property equalities the event must have (≤ 20 keys)."
    )


@strawberry.type(description="A conversion funnel of a website.")
class Funnel:
    row: strawberry.Private[FunnelRow]
    id: strawberry.ID = strawberry.field(description="Funnel id (UUID).")
    name: str = strawberry.field(description="Display name (1–200 characters).")
    description: str | None = strawberry.field(description="Free text (≤ 2,000 characters).")
    steps: list[FunnelStep] = strawberry.field(description="2–20 steps, in order.")
    is_active: bool = strawberry.field(
        description="Whether the browser funnel tracker loads it; reports work either way."
    )
    window: int = strawberry.field(
        description="Conversion window in seconds (1 s – 90 days, default 604800 = 7 days): "
        "every later step at most this long after the step-1 event (inclusive)."
    )
    count_by: FunnelCount = strawberry.field(description="Visitors or sessions.")
    ordering: FunnelOrdering = strawberry.field(description=ORDERING_RULES)
    created_at: datetime = strawberry.field(description="When it was created (UTC).")
    updated_at: datetime = strawberry.field(description="When it last changed (UTC).")

    @strawberry.field(description="The website the funnel belongs to.")
    async def website(
        self, info: Info[Context, None]
    ) -> Annotated[Website, strawberry.lazy("graph.types.website")]:
        from graph.types.website import Website

        site = await info.context.runtime.websites.get(self.row.website_id)
        assert site is not None
        return Website.of(site)

    @strawberry.field(
        description="The funnel over a range [from, to) in a time zone (default: the "
        "website's). Subjects reach step k by the ordering rules with the step-1 event in the "
        "range and step k within the window after it; the furthest step of any attempt "
        "counts. compare: also compute `previous` (the period of equal length before)."
    )
    async def report(
        self,
        info: Info[Context, None],
        range: RangeArg,
        timezone: TimeZoneArg = None,
        compare: Annotated[
            bool | None, strawberry.argument(description="Also compute `previous`.")
        ] = False,
    ) -> FunnelReport:
        return await _report(info, self.row, range, timezone, bool(compare))

    @classmethod
    def of(cls, row: FunnelRow) -> Funnel:
        steps = [
            FunnelStep(
                name=s["name"],
                type=FunnelStepType(s["type"]),
                pattern=s["pattern"],
                properties=s.get("properties"),
            )  # fmt: skip
            for s in row.steps
        ]
        return cls(
            row=row, id=strawberry.ID(row.id), name=row.name, description=row.description,
            steps=steps, is_active=row.is_active, window=row.window_seconds,
            count_by=FunnelCount(row.count_by), ordering=FunnelOrdering(row.ordering),
            created_at=row.created_at, updated_at=row.updated_at,
        )  # fmt: skip


async def _report(
    info: Info[Context, None],
    row: FunnelRow,
    range_: RangeInput,
    timezone: str | None,
    compare: bool,
) -> FunnelReport:
    rt = info.context.runtime
    site = await rt.websites.get(row.website_id)
    with graphql_errors():
        rng = to_range(range_, timezone, site.timezone if site else "UTC", rt.retention_days)
    start, end, tz = rng.start, rng.end, rng.zone
    with graphql_errors():
        result = await report_ops.report(rt, row, start, end, tz)
    return report_of(result, compare)


def _funnels_loader(
    info: Info[Context, None], active_only: bool
) -> DataLoader[str, list[FunnelRow]]:
    rt = info.context.runtime

    async def load(site_ids: list[str]) -> list[list[FunnelRow]]:
        found = await ops.list_for_websites(rt, list(site_ids), active_only)
        return [found[s] for s in site_ids]

    loader: DataLoader[str, list[FunnelRow]] = info.context.loader(
        f"funnels_by_website:{active_only}", lambda: DataLoader(load)
    )
    return loader


async def resolve_funnels(
    root: Any, info: Info[Context, None], active_only: bool = False
) -> list[Funnel]:
    """A (visible) website's funnels, newest first; one statement for many websites."""
    rows: list[FunnelRow] = await _funnels_loader(info, active_only).load(str(root.id))
    return [Funnel.of(r) for r in rows]


@strawberry.type(description="Result of a funnel mutation.")
class FunnelPayload:
    funnel: Funnel | None = strawberry.field(description="The funnel; null on error.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was changed.")


def _steps(steps: list[FunnelStepInput]) -> list[dict[str, Any]]:
    return [
        {"name": s.name, "type": s.type.value, "pattern": s.pattern, "properties": s.properties}
        for s in steps
    ]


def _enum_value(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


@strawberry.type
class FunnelQuery:
    @strawberry.field(description="A funnel by id; null when absent or not visible.")
    async def funnel(
        self,
        info: Info[Context, None],
        id: Annotated[strawberry.ID, strawberry.argument(description="The funnel's id (UUID).")],
    ) -> Funnel | None:
        row = await ops.get_visible(info.context.runtime, info.context.principal, str(id))
        return Funnel.of(row) if row else None

    @strawberry.field(
        description="Reports of several funnels side by side, in the order of `ids` (at most "
        "20); ids absent or not visible to the caller are omitted. Each uses its website's "
        "time zone unless `timezone` is given."
    )
    async def compare_funnels(
        self,
        info: Info[Context, None],
        ids: Annotated[
            list[strawberry.ID], strawberry.argument(description="Funnel ids, at most 20.")
        ],
        range: RangeArg,
        timezone: TimeZoneArg = None,
        compare: Annotated[
            bool | None,
            strawberry.argument(description="Also compute each report's `previous`."),
        ] = False,
    ) -> list[FunnelReport]:
        if len(ids) > report_ops.MAX_COMPARE:
            with graphql_errors():
                raise UserErrorExc(f"ids: at most {report_ops.MAX_COMPARE}", ["ids"], "TOO_LARGE")
        ctx = info.context
        rows = await ops.get_many_visible(ctx.runtime, ctx.principal, [str(i) for i in ids])
        visible = [r for r in rows if r is not None]
        return list(
            await asyncio.gather(
                *(_report(info, r, range, timezone, bool(compare)) for r in visible)
            )
        )


@strawberry.type
class FunnelMutations:
    @strawberry.mutation(description="Create a funnel (write scope on the website).")
    async def create_funnel(
        self,
        info: Info[Context, None],
        input: Annotated[CreateFunnelInput, strawberry.argument(description="The new funnel.")],
    ) -> FunnelPayload:
        ctx = info.context
        values = {
            "website_id": str(input.website_id), "name": input.name,
            "description": input.description, "steps": _steps(input.steps),
            "is_active": input.is_active, "window": input.window,
            "count_by": input.count_by.value, "ordering": input.ordering.value,
        }  # fmt: skip
        row, errors = await attempt(ops.create(ctx.runtime, ctx.principal, values))
        return FunnelPayload(funnel=Funnel.of(row) if row else None, user_errors=errors)

    @strawberry.mutation(description="Change a funnel (write scope on its website).")
    async def update_funnel(
        self,
        info: Info[Context, None],
        input: Annotated[
            UpdateFunnelInput, strawberry.argument(description="The funnel and its changes.")
        ],
    ) -> FunnelPayload:
        ctx = info.context
        changes: dict[str, Any] = {}
        for key in ("name", "description", "is_active", "window", "count_by", "ordering"):
            value = getattr(input, key)
            if value is strawberry.UNSET or (value is None and key not in ("name", "description")):
                continue
            changes[key] = _enum_value(value)
        if input.steps is not strawberry.UNSET:
            changes["steps"] = _steps(input.steps) if input.steps is not None else None
        row, errors = await attempt(ops.update(ctx.runtime, ctx.principal, str(input.id), changes))
        return FunnelPayload(funnel=Funnel.of(row) if row else None, user_errors=errors)

    @strawberry.mutation(description="Delete a funnel (write scope on its website).")
    async def delete_funnel(
        self,
        info: Info[Context, None],
        input: Annotated[
            DeleteFunnelInput, strawberry.argument(description="The funnel to delete.")
        ],
    ) -> DeletePayload:
        ctx = info.context
        return await deleted(input.id, ops.delete(ctx.runtime, ctx.principal, str(input.id)))
