"""Raw events of a website, newest first, with keyset pagination on ``(ts, id)``.

The cursor is opaque to clients: base64url of ``"<ts ISO 8601>|<uuid>"`` of the last
event of a page. Filters follow the event-based rules of metrics.md.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from db.errors import DatabaseUnavailable, QueryTimeout
from db.queries import stats_events as sql
from db.queries.dimensions import FilterSpec
from db.queries.stats import InvalidPattern
from resolvers.access import Principal
from resolvers.definitions import MAX_EVENTS_FIRST
from resolvers.errors import Forbidden, ServiceUnavailable, UserError
from resolvers.ranges import Range
from resolvers.runtime import Runtime


def encode_cursor(ts: datetime, event_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{ts.isoformat()}|{event_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (ts, id) of a cursor; ``UserError`` naming ``after`` when it is not one."""
    try:
        ts, _, event_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        parsed = datetime.fromisoformat(ts)
        if parsed.tzinfo is None:
            raise ValueError("naive cursor time")
        return parsed, uuid.UUID(event_id)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise UserError("after: not a cursor from pageInfo.endCursor", ["after"]) from None


def check_raw_access(who: Principal, website_id: str) -> None:
    """Raw events carry visitor ids (pseudonymous personal data): listing them needs a
    credential for the website itself. A public website shares its stats, not its
    events (as the per-visitor export needs that credential too)."""
    if not who.owns(website_id):
        raise Forbidden(
            "events: listing raw events needs a token or key for this website"
            " (a public website shares its stats only)",
            ["events"],
        )


def check_first(first: int) -> int:
    if not 1 <= first <= MAX_EVENTS_FIRST:
        raise UserError(f"first: must be between 1 and {MAX_EVENTS_FIRST}", ["first"],
                        "OUT_OF_RANGE")  # fmt: skip
    return first


@dataclass(frozen=True)
class EventsKey:
    website_id: str
    first: int
    after: tuple[datetime, uuid.UUID] | None
    range: Range | None
    filters: tuple[FilterSpec, ...]


@dataclass
class EventPage:
    """``events``: dicts with the stored columns (db/queries/stats_events.EVENT_FIELDS)."""

    events: list[dict[str, Any]]
    has_next_page: bool

    @property
    def end_cursor(self) -> str | None:
        if not self.events:
            return None
        last = self.events[-1]
        return encode_cursor(last["ts"], last["id"])


async def load_events(rt: Runtime, keys: Sequence[EventsKey]) -> list[EventPage | Exception]:
    """One statement per (range, filters, first) shared by the keys."""
    groups: dict[tuple[Range | None, tuple[FilterSpec, ...], int], list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[(key.range, key.filters, key.first)].append(i)
    out: list[EventPage | Exception] = [EventPage([], False)] * len(keys)
    for (rng, filters, first), indexes in groups.items():
        requests = [sql.EventPageRequest(keys[i].website_id, keys[i].after) for i in indexes]
        try:
            pages = await sql.list_events(
                rt.pools.read, requests, rng.start if rng else None, rng.end if rng else None,
                filters, first + 1,
            )  # fmt: skip
        except InvalidPattern as exc:
            err: Exception = UserError(f"filters: invalid regular expression ({exc})",
                                       ["filters"])  # fmt: skip
            for i in indexes:
                out[i] = err
            continue
        except (DatabaseUnavailable, QueryTimeout) as exc:
            for i in indexes:
                out[i] = ServiceUnavailable(str(exc))
            continue
        for n, i in enumerate(indexes):
            rows = pages.get(n, [])
            out[i] = EventPage(rows[:first], len(rows) > first)
    return out
