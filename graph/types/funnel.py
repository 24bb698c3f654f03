"""Funnels: definitions, reports, comparison (metrics.md, Funnels). STUB — to be written."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from graph.context import Context


@strawberry.type(description="A conversion funnel.")
class Funnel:
    id: strawberry.ID = strawberry.field(description="Stub.")


async def resolve_funnels(
    root: Any, info: Info[Context, None], active_only: bool = False
) -> list[Funnel]:
    return []


@strawberry.type
class FunnelQuery:
    @strawberry.field(description="Stub.")
    async def funnel(self, info: Info[Context, None], id: strawberry.ID) -> Funnel | None:
        return None


@strawberry.type
class FunnelMutations:
    @strawberry.mutation(description="Stub.")
    async def delete_funnel(self, info: Info[Context, None], id: strawberry.ID) -> bool:
        return False
