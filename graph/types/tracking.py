"""``trackEvents`` (public, like the tracker) and ``importEvents`` (write scope)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from graph.context import Context
from graph.http import peer_ip
from graph.types.common import UserError, UserErrorCode
from graph.unavailable import answer_unavailable
from resolvers.errors import RateLimited, Refused, ServiceUnavailable
from resolvers.errors import UserError as UserErrorExc
from resolvers.event_input import Mode, snake_keys
from resolvers.tracking import TrackRequest, track


@strawberry.input(description="One event, with the tracker's fields in camelCase.")
class EventInput:
    id: strawberry.ID | None = strawberry.field(
        default=None, description="UUID chosen by the client; resending it is idempotent."
    )
    visitor_id: str | None = strawberry.field(
        default=None, description="≤ 255 chars; when absent a daily-salted hash of site, IP, UA."
    )
    session_id: str | None = strawberry.field(
        default=None, description="≤ 255 chars; when absent the visitor's session < 30 min old."
    )
    event_type: str = strawberry.field(
        default="pageview", description="`pageview` or a custom event name (≤ 100 chars)."
    )
    page: str | None = strawberry.field(default=None, description="Path or absolute URL.")
    referrer: str | None = strawberry.field(default=None, description="Referrer URL.")
    user_agent: str | None = strawberry.field(default=None, description="Browser user agent.")
    timestamp: datetime | None = strawberry.field(
        default=None,
        description="Event time. trackEvents keeps it within [now − 24 h, now + 5 min]; "
        "importEvents keeps any past time.",
    )
    utm_source: str | None = strawberry.field(default=None, description="utm_source.")
    utm_medium: str | None = strawberry.field(default=None, description="utm_medium.")
    utm_campaign: str | None = strawberry.field(default=None, description="utm_campaign.")
    utm_term: str | None = strawberry.field(default=None, description="utm_term.")
    utm_content: str | None = strawberry.field(default=None, description="utm_content.")
    time_on_page: int | None = strawberry.field(default=None, description="Seconds, ≥ 0.")
    properties: JSON | None = strawberry.field(
        default=None, description="Custom event properties (object ≤ 8 KiB, depth ≤ 3)."
    )
    browser: str | None = strawberry.field(default=None, description="Wins over the UA parse.")
    os: str | None = strawberry.field(default=None, description="Wins over the UA parse.")
    device: str | None = strawberry.field(default=None, description="desktop|mobile|tablet.")
    country: str | None = strawberry.field(default=None, description="ISO 3166-1 alpha-2.")
    city: str | None = strawberry.field(default=None, description="City name.")
    screen: str | None = strawberry.field(default=None, description="Screen size, e.g. 1920x1080.")


@strawberry.input(description="Events for one website; at most 500 (track) or 10,000 (import).")
class TrackEventsInput:
    website_id: strawberry.ID = strawberry.field(description="The website the events belong to.")
    events: list[EventInput] = strawberry.field(description="The events, all stored or none.")


@strawberry.input(description="Historical events for one website (write scope); ≤ 10,000 per call.")
class ImportEventsInput:
    website_id: strawberry.ID = strawberry.field(description="The website the events belong to.")
    events: list[EventInput] = strawberry.field(description="The events, all stored or none.")


@strawberry.type(description="What was stored; on error nothing was.")
class TrackEventsPayload:
    accepted: int = strawberry.field(description="Events stored (bot events are dropped).")
    event_ids: list[strawberry.ID | None] = strawberry.field(
        description="Per input event, its id; null for a dropped bot event."
    )
    user_errors: list[UserError] = strawberry.field(description="Why nothing was stored.")


@strawberry.type(description="What was imported; on error nothing was.")
class ImportEventsPayload(TrackEventsPayload):
    pass


#: The tracking operation names the website as the tracker does (``siteId``).
_SITE = {"siteId": "websiteId"}


def _raw(ev: EventInput) -> dict[str, Any]:
    raw = snake_keys({k: v for k, v in vars(ev).items()})
    if isinstance(ev.timestamp, datetime):
        raw["timestamp"] = ev.timestamp.isoformat()
    if ev.id is not None:
        raw["id"] = str(ev.id)
    return raw


def _refused(error: UserError) -> tuple[int, list[strawberry.ID | None], list[UserError]]:
    return 0, [], [error]


async def _track(
    info: Info[Context, None], data: TrackEventsInput | ImportEventsInput, mode: Mode
) -> tuple[int, list[strawberry.ID | None], list[UserError]]:
    """(accepted, event ids, user errors) of a track or import mutation."""
    ctx = info.context
    site_id = str(data.website_id)
    if mode == "import":
        try:
            site = await ctx.runtime.websites.get(site_id)
            ctx.principal.require("write", site, site_id)
        except UserErrorExc as exc:
            return _refused(UserError.of(exc, rename=_SITE))
    headers = {k.lower(): v for k, v in ctx.request.headers.items()}
    req = TrackRequest(
        site_id,
        [_raw(e) for e in data.events],
        mode,
        peer_ip(ctx.request),
        headers,
        door=mode,
        trusted=ctx.principal.has("write") and ctx.principal.owns(site_id),
    )
    try:
        result = await track(ctx.runtime, req)
    except UserErrorExc as exc:
        return _refused(UserError.of(exc, rename=_SITE))
    except Refused as exc:
        code = (
            UserErrorCode.RATE_LIMITED if isinstance(exc, RateLimited) else UserErrorCode.FORBIDDEN
        )
        return _refused(UserError(field=None, message=exc.message, code=code))
    except ServiceUnavailable as exc:  # the message names what is down (or full)
        answer_unavailable(ctx)  # HTTP 503 + Retry-After, like the REST doors
        return _refused(UserError(field=None, message=exc.message, code=UserErrorCode.UNAVAILABLE))
    ids = [strawberry.ID(i) if i else None for i in result.event_ids]
    return result.stored, ids, []


@strawberry.type
class TrackingMutations:
    @strawberry.mutation(
        description="Record events like the browser tracker (public). A page of another "
        "site (Origin/Referer) gets a FORBIDDEN user error; over the per-IP or per-website "
        "events-per-minute limit, RATE_LIMITED."
    )
    async def track_events(
        self,
        info: Info[Context, None],
        input: Annotated[
            TrackEventsInput,
            strawberry.argument(description="The mutation's input (see its fields)."),
        ],
    ) -> TrackEventsPayload:
        accepted, ids, errors = await _track(info, input, "public")
        return TrackEventsPayload(accepted=accepted, event_ids=ids, user_errors=errors)

    @strawberry.mutation(description="Import historical events (write scope; any past time).")
    async def import_events(
        self,
        info: Info[Context, None],
        input: Annotated[
            ImportEventsInput,
            strawberry.argument(description="The mutation's input (see its fields)."),
        ],
    ) -> ImportEventsPayload:
        accepted, ids, errors = await _track(info, input, "import")
        return ImportEventsPayload(accepted=accepted, event_ids=ids, user_errors=errors)
