"""New and returning visitors of a stats scope (same scope as ``resolvers.stats``).

``visitors`` is metrics.md's visitors (distinct visitors with any event in the range,
under the scope's event-based filters); a visitor is *returning* when the website has
an event of it before the range's start, else *new*. Used by the REST
``traffic-summary`` route; batch-shaped so that a GraphQL field can wrap it in a
DataLoader later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from db.errors import DatabaseUnavailable, QueryTimeout
from db.queries import visitors as sql
from db.queries.stats import InvalidPattern
from resolvers.errors import ServiceUnavailable, UserError
from resolvers.runtime import Runtime
from resolvers.stats_types import Scope


@dataclass(frozen=True)
class VisitorMix:
    """Counts of distinct visitors; ``new + returning == visitors``."""

    visitors: int
    new: int
    returning: int


async def load_visitor_mix(rt: Runtime, scopes: Sequence[Scope]) -> list[VisitorMix]:
    """One answer per scope, in order (one statement per scope, run concurrently)."""

    async def one(scope: Scope) -> VisitorMix:
        r = scope.range
        try:
            found = await sql.visitor_counts(
                rt.pools.read, scope.website_id, r.start, r.end, scope.filters
            )
        except InvalidPattern as exc:
            raise UserError(f"filters: invalid regular expression ({exc})", ["filters"]) from exc
        except (DatabaseUnavailable, QueryTimeout) as exc:
            raise ServiceUnavailable(str(exc)) from exc
        return VisitorMix(found.visitors, found.visitors - found.returning, found.returning)

    return list(await asyncio.gather(*(one(s) for s in scopes)))
