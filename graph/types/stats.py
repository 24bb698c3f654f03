"""Stats, realtime and raw events of a website (metrics.md). STUB — to be written."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from strawberry.types import Info

from graph.context import Context


@strawberry.type(description="Metrics of one website over one range (metrics.md).")
class Stats:
    placeholder: int = strawberry.field(description="Stub.")


@strawberry.type(description="Visitors right now.")
class Realtime:
    visitors: int = strawberry.field(description="Stub.")


async def resolve_stats(root: Any, info: Info[Context, None]) -> Stats:
    return Stats(placeholder=0)


async def resolve_realtime(root: Any, info: Info[Context, None]) -> Realtime:
    return Realtime(visitors=0)


@strawberry.type
class StatsQuery:
    @strawberry.field(description="Stub.")
    def definitions(self) -> list[str]:
        return []


@strawberry.type
class StatsSubscription:
    @strawberry.subscription(description="Stub.")
    async def realtime(self, website_id: strawberry.ID) -> AsyncGenerator[Realtime, None]:
        yield Realtime(visitors=0)
