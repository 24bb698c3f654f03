"""``Website.events``: the stored events, newest first, as a cursor connection."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import strawberry
from starlette.websockets import WebSocket
from strawberry.scalars import JSON
from strawberry.types import Info

from graph.context import Context
from graph.types.ranges import FilterInput, RangeInput, graphql_errors, to_filters, to_range
from resolvers import loaders
from resolvers.stats_events import (
    EventsKey,
    check_first,
    check_raw_access,
    decode_cursor,
    encode_cursor,
)

if TYPE_CHECKING:
    from graph.types.website import Website


@strawberry.type(description="One stored event (UTC times).")
class Event:
    id: strawberry.ID = strawberry.field(description="Event id (UUID).")
    timestamp: datetime = strawberry.field(description="Event time (UTC).")
    event_type: str = strawberry.field(description="`pageview` or the custom event's name.")
    visitor_id: str = strawberry.field(description="Visitor id.")
    session_id: str = strawberry.field(description="Session id.")
    page: str = strawberry.field(description="Page path (no query or fragment).")
    referrer: str | None = strawberry.field(description="Referrer URL as sent.")
    referrer_host: str | None = strawberry.field(
        description="Referrer host (lower case, no www.); null for none or the own domain."
    )
    utm_source: str | None = strawberry.field(description="utm_source.")
    utm_medium: str | None = strawberry.field(description="utm_medium.")
    utm_campaign: str | None = strawberry.field(description="utm_campaign.")
    utm_term: str | None = strawberry.field(description="utm_term.")
    utm_content: str | None = strawberry.field(description="utm_content.")
    country: str | None = strawberry.field(description="ISO 3166-1 alpha-2.")
    city: str | None = strawberry.field(description="City.")
    browser: str | None = strawberry.field(description="Browser.")
    os: str | None = strawberry.field(description="Operating system.")
    device: str | None = strawberry.field(description="desktop, mobile or tablet.")
    screen: str | None = strawberry.field(description="Screen size, e.g. 1920x1080.")
    time_on_page: int | None = strawberry.field(description="Seconds, as sent.")
    properties: JSON | None = strawberry.field(description="Custom event properties.")
    received_at: datetime = strawberry.field(description="When the server received it (UTC).")

    @classmethod
    def of(cls, row: dict[str, Any]) -> Event:
        values = {k: v for k, v in row.items() if k not in ("id", "ts")}
        return cls(id=strawberry.ID(str(row["id"])), timestamp=row["ts"], **values)


@strawberry.type(description="An event and its cursor.")
class EventEdge:
    cursor: str = strawberry.field(description="Opaque cursor of this event (for `after`).")
    node: Event = strawberry.field(description="The event.")


@strawberry.type(description="Pagination state.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More events follow this page.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last event, if any.")


@strawberry.type(description="A page of events, newest first (keyset on (ts, id)).")
class EventConnection:
    edges: list[EventEdge] = strawberry.field(description="Events with their cursors.")
    nodes: list[Event] = strawberry.field(description="The events.")
    page_info: PageInfo = strawberry.field(description="Pagination state.")


async def resolve_events(
    root: Website,
    info: Info[Context, None],
    first: int = 50,
    after: str | None = None,
    range: RangeInput | None = None,
    filters: list[FilterInput] | None = None,
) -> EventConnection:
    ctx = info.context
    rt = ctx.runtime
    with graphql_errors():
        check_raw_access(ctx.principal, str(root.id))
        check_first(first)
        cursor = decode_cursor(after) if after is not None else None
        rng = to_range(range, None, root.timezone, rt.retention_days) if range else None
        key = EventsKey(str(root.id), first, cursor, rng, to_filters(filters))
        memo = not isinstance(ctx.request, WebSocket)
        page = await ctx.loader("events", lambda: loaders.events_loader(rt, memo)).load(key)
    nodes = [Event.of(r) for r in page.events]
    edges = [EventEdge(cursor=_cursor(r), node=n) for r, n in zip(page.events, nodes, strict=True)]
    return EventConnection(
        edges=edges, nodes=nodes,
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
    )  # fmt: skip


def _cursor(row: dict[str, Any]) -> str:
    return encode_cursor(row["ts"], row["id"])
