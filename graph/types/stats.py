"""Stats and realtime of a website (metrics.md), the definitions, the subscription.

Every number is loaded through per-request DataLoaders (resolvers/loaders.py), so the
fields of one ``stats`` — and the same fields of many websites — share statements.
Descriptions come from resolvers/definitions.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from graphql import GraphQLError
from starlette.websockets import WebSocket
from strawberry.types import Info

from graph.context import Context
from graph.types.definitions import MetricDefinition, all_definitions
from graph.types.ranges import (
    Dimension,
    FilterInput,
    Interval,
    RangeInput,
    graphql_errors,
    to_filters,
    to_range,
)
from resolvers import definitions as d
from resolvers import loaders
from resolvers import stats_types as st
from resolvers.errors import UserError as UserErrorExc
from resolvers.filters import check_dimension
from resolvers.realtime import RealtimeData, load_realtime
from resolvers.websites import get_visible

if TYPE_CHECKING:
    from graph.types.website import Website

REFRESH_SECONDS = 30.0  # realtime is re-sent this often when it changed without commits
MIN_PUSH_INTERVAL = 0.25  # seconds; commits in between are coalesced into one push


def _memo(info: Info[Context, None]) -> bool:
    return not isinstance(info.context.request, WebSocket)


def _stats_loader(info: Info[Context, None]) -> Any:
    rt = info.context.runtime
    return info.context.loader("stats", lambda: loaders.stats_loader(rt, _memo(info)))


@strawberry.type(
    description="Per-metric change against the previous period. " + d.describe("change")
)
class SummaryChange:
    pageviews: float | None = strawberry.field(description=d.describe("change"))
    events: float | None = strawberry.field(description=d.describe("change"))
    visitors: float | None = strawberry.field(description=d.describe("change"))
    visits: float | None = strawberry.field(description=d.describe("change"))
    bounce_rate: float | None = strawberry.field(description=d.describe("change"))
    visit_duration: float | None = strawberry.field(description=d.describe("change"))
    views_per_visit: float | None = strawberry.field(description=d.describe("change"))


@strawberry.type(description="Summary metrics of the range (metrics.md).")
class Summary:
    pageviews: int = strawberry.field(description=d.describe("pageviews"))
    events: int = strawberry.field(description=d.describe("events"))
    visitors: int = strawberry.field(description=d.describe("visitors"))
    visits: int = strawberry.field(description=d.describe("visits"))
    bounce_rate: float = strawberry.field(description=d.describe("bounceRate"))
    visit_duration: float = strawberry.field(description=d.describe("visitDuration"))
    views_per_visit: float = strawberry.field(description=d.describe("viewsPerVisit"))
    previous: Summary | None = strawberry.field(
        default=None, description="The same metrics over the previous period (compare: true)."
    )
    change: SummaryChange | None = strawberry.field(
        default=None, description="Change against `previous` (compare: true)."
    )

    @classmethod
    def of(cls, s: st.Summary) -> Summary:
        return cls(pageviews=s.pageviews, events=s.events, visitors=s.visitors, visits=s.visits,
                   bounce_rate=s.bounce_rate, visit_duration=s.visit_duration,
                   views_per_visit=s.views_per_visit)  # fmt: skip


@strawberry.type(description="One time-series bucket: [start, next bucket's start).")
class Bucket:
    start: datetime = strawberry.field(description=d.BUCKET_START)
    pageviews: int = strawberry.field(description=d.describe("pageviews", "In the bucket."))
    visitors: int = strawberry.field(description=d.describe("visitors", "Within the bucket."))
    visits: int = strawberry.field(description=d.describe("visits", "Started in the bucket."))
    bounce_rate: float = strawberry.field(description=d.describe("bounceRate"))
    visit_duration: float = strawberry.field(description=d.describe("visitDuration"))


@strawberry.type(description="One value of a dimension; fields that do not apply are null.")
class BreakdownRow:
    value: str = strawberry.field(description=d.ROW_VALUE)
    visitors: int = strawberry.field(description=d.describe("visitors", "With this value."))
    pageviews: int | None = strawberry.field(
        description=d.describe("pageviews", "PAGE and session dimensions; null otherwise.")
    )
    visits: int | None = strawberry.field(
        description=d.describe("visits", "Session dimensions only.")
    )
    events: int | None = strawberry.field(
        description=d.describe("events", "EVENT and PROPERTY only.")
    )
    bounce_rate: float | None = strawberry.field(
        description=d.describe("bounceRate", "Session dimensions only.")
    )
    visit_duration: float | None = strawberry.field(
        description=d.describe("visitDuration", "Session dimensions only.")
    )
    share: float = strawberry.field(description=d.describe("share"))

    @classmethod
    def of(cls, r: st.BreakdownRow) -> BreakdownRow:
        return cls(value=r.value, visitors=r.visitors, pageviews=r.pageviews, visits=r.visits,
                   events=r.events, bounce_rate=r.bounce_rate, visit_duration=r.visit_duration,
                   share=r.share)  # fmt: skip


@strawberry.type(description="A page of breakdown rows.")
class Breakdown:
    rows: list[BreakdownRow] = strawberry.field(description="Rows in order (see `breakdown`).")
    total_rows: int = strawberry.field(description="Rows before offset/limit (visitors > 0).")


@strawberry.type(description=d.STATS)
class Stats:
    scope: strawberry.Private[st.Scope]

    @strawberry.field(name="from", description="Resolved start of the range (included).")
    def from_(self) -> datetime:
        return self.scope.range.start

    @strawberry.field(description="Resolved end of the range (excluded).")
    def to(self) -> datetime:
        return self.scope.range.end

    @strawberry.field(description="The IANA time zone the range and buckets are in.")
    def timezone(self) -> str:
        return self.scope.range.zone

    @strawberry.field(description="Summary metrics of the range.")
    async def summary(
        self,
        info: Info[Context, None],
        compare: Annotated[bool | None, strawberry.argument(description=d.SUMMARY_COMPARE)] = False,
    ) -> Summary:
        compare = bool(compare)  # null: the default
        loader = _stats_loader(info)
        keys = [st.StatsKey(self.scope, "summary")]
        if compare:
            keys.append(st.StatsKey(self.scope.previous(), "summary"))
        with graphql_errors():
            found = await loader.load_many(keys)
        out = Summary.of(found[0])
        if compare:
            out.previous = Summary.of(found[1])
            out.change = SummaryChange(**st.change(*found))
        return out

    @strawberry.field(description=d.TIMESERIES)
    async def timeseries(
        self,
        info: Info[Context, None],
        interval: Annotated[Interval, strawberry.argument(description="Bucket size.")],
    ) -> list[Bucket]:
        with graphql_errors():
            found = await _stats_loader(info).load(
                st.StatsKey(self.scope, "timeseries", interval=interval.value)
            )
        return [Bucket(start=b.start, pageviews=b.pageviews, visitors=b.visitors, visits=b.visits,
                       bounce_rate=b.bounce_rate, visit_duration=b.visit_duration)
                for b in found]  # fmt: skip

    @strawberry.field(description=d.BREAKDOWN)
    async def breakdown(
        self,
        info: Info[Context, None],
        dimension: Annotated[Dimension, strawberry.argument(description="The dimension.")],
        property: Annotated[
            str | None, strawberry.argument(description="Property key (PROPERTY only).")
        ] = None,
        limit: Annotated[
            int | None, strawberry.argument(description=f"Rows, 1–{d.MAX_BREAKDOWN_LIMIT}.")
        ] = 10,
        offset: Annotated[
            int | None,
            strawberry.argument(description=f"Rows skipped, 0–{d.MAX_BREAKDOWN_OFFSET}."),
        ] = 0,
    ) -> Breakdown:
        limit = 10 if limit is None else limit  # null: the default
        offset = offset or 0
        with graphql_errors():
            prop = check_dimension(dimension.value, property)
            if not 1 <= limit <= d.MAX_BREAKDOWN_LIMIT:
                raise UserErrorExc(f"limit: must be between 1 and {d.MAX_BREAKDOWN_LIMIT}",
                                   ["limit"], "OUT_OF_RANGE")  # fmt: skip
            if not 0 <= offset <= d.MAX_BREAKDOWN_OFFSET:
                raise UserErrorExc(f"offset: must be between 0 and {d.MAX_BREAKDOWN_OFFSET}",
                                   ["offset"], "OUT_OF_RANGE")  # fmt: skip
            key = st.StatsKey(self.scope, "breakdown", dimension=dimension.value,
                               property=prop, limit=limit, offset=offset)  # fmt: skip
            found = await _stats_loader(info).load(key)
        return Breakdown(rows=[BreakdownRow.of(r) for r in found.rows], total_rows=found.total_rows)


@strawberry.type(description=d.REALTIME)
class Realtime:
    data: strawberry.Private[RealtimeData]

    @strawberry.field(description=d.describe("realtimeVisitors"))
    def visitors(self) -> int:
        return self.data.visitors

    @strawberry.field(description=d.describe("realtimePageviews"))
    def pageviews(self) -> int:
        return self.data.pageviews

    @strawberry.field(description=d.TOP_PAGES)
    def top_pages(
        self,
        limit: Annotated[int | None, strawberry.argument(description=f"1–{d.MAX_TOP_PAGES}.")] = 5,
    ) -> list[BreakdownRow]:
        limit = 5 if limit is None else limit  # null: the default
        if not 1 <= limit <= d.MAX_TOP_PAGES:
            raise GraphQLError(f"limit: must be between 1 and {d.MAX_TOP_PAGES}",
                               extensions={"code": "BAD_USER_INPUT", "field": "limit"})  # fmt: skip
        return [BreakdownRow.of(r) for r in self.data.top_pages[:limit]]


async def resolve_stats(
    root: Website,
    info: Info[Context, None],
    range: RangeInput,
    timezone: str | None = None,
    filters: list[FilterInput] | None = None,
) -> Stats:
    """Validate the arguments (errors name them) and return the scope's Stats."""
    rt = info.context.runtime
    with graphql_errors():
        rng = to_range(range, timezone, root.timezone, rt.retention_days)
        specs = to_filters(filters)
    return Stats(scope=st.Scope(str(root.id), rng, specs))


async def resolve_realtime(root: Website, info: Info[Context, None]) -> Realtime:
    rt = info.context.runtime
    loader = info.context.loader("realtime", lambda: loaders.realtime_loader(rt, _memo(info)))
    with graphql_errors():
        data = await loader.load(str(root.id))
    return Realtime(data=data)


@strawberry.type
class StatsQuery:
    @strawberry.field(description="Every metric's definition, unit and kind (metrics.md).")
    def definitions(self) -> list[MetricDefinition]:
        return all_definitions()


@strawberry.type
class StatsSubscription:
    @strawberry.subscription(
        description="Realtime of a website: sent at once, then whenever new events of it "
        f"commit (at most every {MIN_PUSH_INTERVAL} s), and every {int(REFRESH_SECONDS)} s "
        "when the 5-minute window changed. Over graphql-transport-ws."
    )
    async def realtime(
        self,
        info: Info[Context, None],
        website_id: Annotated[strawberry.ID, strawberry.argument(description="The website.")],
    ) -> AsyncGenerator[Realtime, None]:
        ctx = info.context
        rt = ctx.runtime
        site = await get_visible(rt, ctx.principal, str(website_id))
        if site is None:
            raise GraphQLError(f"websiteId: website {str(website_id)!r} not found",
                               extensions={"code": "NOT_FOUND", "field": "websiteId"})  # fmt: skip
        async with rt.pubsub.subscribe(site.id) as changes:
            with graphql_errors():
                last = (await load_realtime(rt, [site.id], fresh=True))[0]
            yield Realtime(data=last)
            while True:
                notified = await changes.wait(REFRESH_SECONDS)
                with graphql_errors():
                    data = (await load_realtime(rt, [site.id], fresh=True))[0]
                if notified or data != last:
                    last = data
                    yield Realtime(data=data)
                await asyncio.sleep(MIN_PUSH_INTERVAL)
