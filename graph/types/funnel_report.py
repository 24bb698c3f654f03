"""GraphQL types of funnel reports (metrics.md, Funnels; rules in resolvers/funnel_report.py)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from db.queries.funnels import FunnelRow
from graph.context import Context
from graph.types.ranges import Dimension, graphql_errors
from resolvers import funnel_report as ops
from resolvers.funnel_report import ReportResult

if TYPE_CHECKING:
    from graph.types.funnel import Funnel


@strawberry.type(description="One step of a funnel report.")
class FunnelStepReport:
    name: str = strawberry.field(description="The step's name.")
    reached: int = strawberry.field(
        description="Subjects (visitors or sessions) whose best attempt reached this step."
    )
    conversion_from_start: float = strawberry.field(
        description="100 × reached / reached step 1 (percent; 0 when nobody entered)."
    )
    conversion_from_previous: float = strawberry.field(
        description="100 × reached / reached the previous step (percent; 100 for step 1; "
        "0 when the previous step has 0)."
    )
    dropped: int = strawberry.field(
        description="Reached the previous step − reached this one (0 for step 1)."
    )


@strawberry.type(description="One bar of a time-to-convert histogram.")
class DurationBucket:
    up_to: float = strawberry.field(
        description="Upper bound in seconds, inclusive; the bucket starts after the previous "
        "bucket's bound (the first at 0). The last bound is the funnel's window."
    )
    count: int = strawberry.field(description="Converted subjects in this bucket.")


@strawberry.type(description="Statistics of a duration over converted subjects (seconds).")
class Duration:
    mean: float = strawberry.field(description="Mean in seconds.")
    median: float = strawberry.field(
        description="Median in seconds (mean of the middle two for an even count)."
    )
    histogram: list[DurationBucket] = strawberry.field(
        description="Counts by fixed bounds (10 s, 30 s, 1 min, 5 min, 15 min, 30 min, 1 h, 3 h, "
        "6 h, 12 h, 1 d, 3 d, 7 d, 14 d, 30 d) below the window, then the window."
    )


@strawberry.type(description="Funnel entries and conversions of one local day.")
class FunnelDay:
    date: date = strawberry.field(
        description="Local date (report's time zone) of the subjects' best-attempt step-1 event."
    )
    entered: int = strawberry.field(description="Subjects counted on this day.")
    converted: int = strawberry.field(description="Of them, those who reached the last step.")
    conversion_rate: float = strawberry.field(description="100 × converted / entered (0 if none).")


@strawberry.type(description="Funnel conversion for one value of a session dimension.")
class FunnelBreakdownRow:
    value: str = strawberry.field(
        description="Dimension value of the session of the best attempt's step-1 event; "
        "missing → (none), no referrer/source → (direct)."
    )
    entered: int = strawberry.field(description="Subjects with this value.")
    converted: int = strawberry.field(description="Of them, those who reached the last step.")
    conversion_rate: float = strawberry.field(description="100 × converted / entered.")


@strawberry.type(description="A page of breakdown rows, entered descending then value ascending.")
class FunnelBreakdown:
    rows: list[FunnelBreakdownRow] = strawberry.field(description="At most `limit` rows.")
    total_rows: int = strawberry.field(description="Number of distinct values in all.")


@strawberry.type(
    description="A funnel over a range [from, to) (metrics.md, Funnels). Subjects are "
    "visitors, or sessions for countBy SESSION; each step-1 event in the range starts an "
    "attempt, later steps at most `window` seconds after it (even after `to`); a subject "
    "counts at the furthest step of its best attempt. See Funnel.ordering for the rules."
)
class FunnelReport:
    result: strawberry.Private[ReportResult]
    with_previous: strawberry.Private[bool]

    @strawberry.field(description="The funnel reported on.")
    def funnel(self) -> Annotated[Funnel, strawberry.lazy("graph.types.funnel")]:
        from graph.types.funnel import Funnel

        return Funnel.of(self.result.funnel)

    @strawberry.field(description="Start of the range (inclusive, UTC instant).")
    def start(self) -> datetime:
        return self.result.start

    @strawberry.field(description="End of the range (exclusive, UTC instant).")
    def end(self) -> datetime:
        return self.result.end

    @strawberry.field(description="Subjects who reached step 1 (a step-1 event in range).")
    def entered(self) -> int:
        return self.result.entered

    @strawberry.field(description="Subjects who reached the last step.")
    def converted(self) -> int:
        return self.result.converted

    @strawberry.field(description="100 × converted / entered (percent; 0 when none entered).")
    def conversion_rate(self) -> float:
        return self.result.conversion_rate

    @strawberry.field(description="Per step, in funnel order.")
    def steps(self) -> list[FunnelStepReport]:
        return [
            FunnelStepReport(
                name=s.name,
                reached=s.reached,
                conversion_from_start=s.conversion_from_start,
                conversion_from_previous=s.conversion_from_previous,
                dropped=s.dropped,
            )  # fmt: skip
            for s in self.result.steps
        ]

    @strawberry.field(
        description="Time to convert (seconds): per converted subject the shortest time from "
        "a step-1 event to the last step along a valid path (ANY: until the last of the "
        "steps is done); null when nobody converted."
    )
    def time_to_convert(self) -> Duration | None:
        t = self.result.time_to_convert
        if t is None:
            return None
        buckets = [DurationBucket(up_to=u, count=c) for u, c in t.histogram]
        return Duration(mean=t.mean, median=t.median, histogram=buckets)

    @strawberry.field(
        description="The same funnel over the period of equal length right before `from`; "
        "null unless requested with compare: true."
    )
    async def previous(self, info: Info[Context, None]) -> FunnelReport | None:
        if not self.with_previous:
            return None
        r = self.result
        start, end = ops.previous_period(r.start, r.end)
        with graphql_errors():
            prev = await ops.report(info.context.runtime, r.funnel, start, end, r.timezone)
        return FunnelReport(result=prev, with_previous=False)

    @strawberry.field(
        description="Entered and converted by local day (report's time zone) of each "
        "subject's best attempt (deepest, then earliest step 1); every day of the range."
    )
    async def daily(self, info: Info[Context, None]) -> list[FunnelDay]:
        r = self.result
        with graphql_errors():
            days = await ops.daily(info.context.runtime, r.funnel, r.start, r.end, r.timezone)
        return [
            FunnelDay(
                date=d.day,
                entered=d.entered,
                converted=d.converted,
                conversion_rate=d.conversion_rate,
            )  # fmt: skip
            for d in days
        ]

    @strawberry.field(
        description="Conversion by a session dimension (not PAGE, EVENT, PROPERTY) of the "
        "session of each subject's best-attempt step-1 event; rows by entered descending, "
        "then value. limit 1–1000, offset ≥ 0."
    )
    async def breakdown(
        self,
        info: Info[Context, None],
        dimension: Annotated[Dimension, strawberry.argument(description="A session dimension.")],
        limit: Annotated[int, strawberry.argument(description="Rows, 1–1000.")] = 10,
        offset: Annotated[int, strawberry.argument(description="Rows skipped, ≥ 0.")] = 0,
    ) -> FunnelBreakdown:
        r = self.result
        with graphql_errors():
            rows, total = await ops.breakdown(
                info.context.runtime, r.funnel, r.start, r.end, dimension.value, limit, offset
            )
        return FunnelBreakdown(
            rows=[
                FunnelBreakdownRow(
                    value=b.value,
                    entered=b.entered,
                    converted=b.converted,
                    conversion_rate=b.conversion_rate,
                )  # fmt: skip
                for b in rows
            ],
            total_rows=total,
        )


def report_of(result: ReportResult, compare: bool) -> FunnelReport:
    return FunnelReport(result=result, with_previous=compare)


__all__ = ["FunnelReport", "FunnelRow", "report_of"]
