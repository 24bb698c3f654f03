"""The ``Website`` type, its queries and its admin mutations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from db.queries.websites import WebsiteRow
from graph.context import Context
from graph.types import events as event_types
from graph.types import funnel as funnel_types
from graph.types import stats as stats_types
from graph.types.common import DeletePayload, UserError, attempt, deleted
from graph.types.ranges import FiltersArg, RangeArg, RangeInput, TimeZoneArg
from resolvers import definitions
from resolvers import websites as ops


@strawberry.type(description="A tracked website (the tracker's site id).")
class Website:
    id: strawberry.ID = strawberry.field(description="The tracker's site id (1–64 characters).")
    domain: str = strawberry.field(description="Host name, lower case, without www.")
    name: str | None = strawberry.field(description="Display name.")
    timezone: str = strawberry.field(
        description="IANA time zone; ranges and buckets are local to it unless a query names one."
    )
    is_public: bool = strawberry.field(description="Readable without a token when true.")
    owner: strawberry.Private[str | None]
    created_at: datetime = strawberry.field(description="When the website was added (UTC).")

    @strawberry.field(
        description="The account (Seentics user id) that owns the website: the account "
        "privacy routes (/api/v1/privacy/{export,delete,anonymize}/:user_id) cover the "
        "websites it owns. Null: no account, or the caller lacks admin scope on the website."
    )
    def owner_id(self, info: Info[Context, None]) -> str | None:
        who = info.context.principal
        return self.owner if who.has("admin") and who.owns(str(self.id)) else None

    # --- stats (owned by graph/types/stats.py) ---
    @strawberry.field(description="Metrics over a range (see Stats).")
    async def stats(
        self,
        info: Info[Context, None],
        range: RangeArg,
        timezone: TimeZoneArg = None,
        filters: FiltersArg = None,
    ) -> stats_types.Stats:
        return await stats_types.resolve_stats(self, info, range, timezone, filters)

    @strawberry.field(description="Visitors and page views in the last 5 minutes (server time).")
    async def realtime(self, info: Info[Context, None]) -> stats_types.Realtime:
        return await stats_types.resolve_realtime(self, info)

    @strawberry.field(description=definitions.EVENTS)
    async def events(
        self,
        info: Info[Context, None],
        first: Annotated[
            int | None, strawberry.argument(description="Events per page, 1–100.")
        ] = 50,
        after: Annotated[
            str | None, strawberry.argument(description="pageInfo.endCursor of the last page.")
        ] = None,
        range: Annotated[
            RangeInput | None, strawberry.argument(description="Only events in [from, to).")
        ] = None,
        filters: FiltersArg = None,
    ) -> event_types.EventConnection:
        first = 50 if first is None else first  # null: the default
        return await event_types.resolve_events(self, info, first, after, range, filters)

    # --- funnels (owned by graph/types/funnel.py) ---
    @strawberry.field(description="The website's funnels, newest first (ties: by id).")
    async def funnels(
        self,
        info: Info[Context, None],
        active_only: Annotated[
            bool | None,
            strawberry.argument(description="Only active funnels (loaded by the tracker)."),
        ] = False,
    ) -> list[funnel_types.Funnel]:
        return await funnel_types.resolve_funnels(self, info, bool(active_only))

    @classmethod
    def of(cls, row: WebsiteRow) -> Website:
        return cls(
            id=strawberry.ID(row.id), domain=row.domain, name=row.name, timezone=row.timezone,
            is_public=row.is_public, owner=row.owner_id, created_at=row.created_at,
        )  # fmt: skip


#: The website operations name the website ``websiteId``; these inputs call it ``id``.
_INPUT_ID = {"websiteId": "id"}


@strawberry.input(description="A new website. Needs an admin token for all websites.")
class CreateWebsiteInput:
    id: strawberry.ID = strawberry.field(description="Site id used by the tracker (1–64 chars).")
    domain: str = strawberry.field(description="Host name; `www.` and scheme are stripped.")
    name: str | None = strawberry.field(default=None, description="Display name.")
    timezone: str = strawberry.field(default="UTC", description="IANA time zone.")
    is_public: bool = strawberry.field(default=False, description="Readable without a token.")
    owner_id: str | None = strawberry.field(
        default=None, description="Owning account (Seentics user id, ≤ 255 chars)."
    )


@strawberry.input(description="Changes to a website; omitted fields stay as they are.")
class UpdateWebsiteInput:
    id: strawberry.ID = strawberry.field(description="The website to change.")
    domain: str | None = strawberry.field(default=None, description="New host name.")
    name: str | None = strawberry.field(default=None, description="New display name.")
    timezone: str | None = strawberry.field(default=None, description="New IANA time zone.")
    is_public: bool | None = strawberry.field(default=None, description="New public flag.")
    owner_id: str | None = strawberry.field(
        default=None, description="New owning account (Seentics user id, ≤ 255 chars)."
    )


@strawberry.input(description="The website to delete, with all its events and funnels.")
class DeleteWebsiteInput:
    id: strawberry.ID = strawberry.field(description="The website to delete.")


@strawberry.type(description="Result of a website mutation.")
class WebsitePayload:
    website: Website | None = strawberry.field(description="The website; null on error.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was changed.")


async def resolve_website(
    info: Info[Context, None],
    id: Annotated[
        strawberry.ID, strawberry.argument(description="The website's id (tracker site id).")
    ],
) -> Website | None:
    ctx = info.context
    row = await ops.get_visible(ctx.runtime, ctx.principal, str(id))
    return Website.of(row) if row else None


async def resolve_websites(info: Info[Context, None]) -> list[Website]:
    ctx = info.context
    return [Website.of(r) for r in await ops.list_visible(ctx.runtime, ctx.principal)]


@strawberry.type
class WebsiteMutations:
    @strawberry.mutation(description="Add a website (admin scope on all websites).")
    async def create_website(
        self,
        info: Info[Context, None],
        input: Annotated[
            CreateWebsiteInput,
            strawberry.argument(description="The mutation's input (see its fields)."),
        ],
    ) -> WebsitePayload:
        ctx = info.context
        row, errors = await attempt(ops.create(ctx.runtime, ctx.principal, {
            "id": str(input.id), "domain": input.domain, "name": input.name,
            "timezone": input.timezone, "is_public": input.is_public, "owner_id": input.owner_id,
        }))  # fmt: skip
        return WebsitePayload(website=Website.of(row) if row else None, user_errors=errors)

    @strawberry.mutation(description="Change a website (admin scope on it).")
    async def update_website(
        self,
        info: Info[Context, None],
        input: Annotated[
            UpdateWebsiteInput,
            strawberry.argument(description="The mutation's input (see its fields)."),
        ],
    ) -> WebsitePayload:
        ctx = info.context
        changes = {"domain": input.domain, "name": input.name, "timezone": input.timezone,
                   "is_public": input.is_public, "owner_id": input.owner_id}  # fmt: skip
        if input.name is None:
            changes.pop("name")
        row, errors = await attempt(
            ops.update(ctx.runtime, ctx.principal, str(input.id), changes), _INPUT_ID
        )
        return WebsitePayload(website=Website.of(row) if row else None, user_errors=errors)

    @strawberry.mutation(description="Delete a website and all its data (admin scope on it).")
    async def delete_website(
        self,
        info: Info[Context, None],
        input: Annotated[
            DeleteWebsiteInput,
            strawberry.argument(description="The mutation's input (see its fields)."),
        ],
    ) -> DeletePayload:
        ctx = info.context
        return await deleted(
            input.id, ops.delete(ctx.runtime, ctx.principal, str(input.id)), _INPUT_ID
        )
