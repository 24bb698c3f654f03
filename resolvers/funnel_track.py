"""Reports of the browser funnel tracker (reference §7.2), stored as events.

Each accepted report becomes one custom event ``funnel_step`` of the website, written
through the normal ingest pipeline (validation, enrichment, visitor and session ids,
group commit), with properties ``{funnel_id, step, converted, step_name?,
event_type?}`` where ``step`` is the tracker's 1-based ``current_step``. EVENT steps of
a funnel match these events by funnel id and step position (drop-off reports,
``event_type: "dropoff"``, match nothing). The event time is ``last_activity`` (kept
within [received − 24 h, received + 5 min] like any public timestamp, else the
receive time); its page is the tracker's ``page`` or the Referer's path, else ``/``.
The tracker's stored-JSON ids (``{"value":…,"expiresAt":…}``) are unwrapped.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from db.queries import funnels as funnel_sql
from db.queries.funnel_sql import FUNNEL_EVENT_TYPE
from resolvers.errors import NotFound, UserError
from resolvers.runtime import Runtime
from resolvers.tracking import TrackRequest, track


@dataclass(frozen=True)
class FunnelTrackResult:
    """The stored ids; all None when the report came from a bot and was dropped."""

    funnel_id: str
    event_id: str | None
    visitor_id: str | None
    session_id: str | None


def _int_step(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError("current_step: a positive integer (1-based)", ["current_step"])
    return value


def _page(payload: Mapping[str, Any], headers: Mapping[str, str]) -> str:
    page = payload.get("page")
    if isinstance(page, str) and page.strip():
        return page
    referer = headers.get("referer") or ""
    return referer if referer.startswith(("http://", "https://")) else "/"


async def track_funnel_step(
    rt: Runtime, payload: Mapping[str, Any], peer_ip: str | None, headers: Mapping[str, str]
) -> FunnelTrackResult:
    """Store one tracker report. ``UserError`` for a malformed payload, ``NotFound``
    when the funnel does not exist or belongs to another website."""
    raw_id = payload.get("funnel_id")
    try:
        funnel_id = str(uuid.UUID(str(raw_id))) if isinstance(raw_id, str) else None
    except ValueError:
        funnel_id = None
    if funnel_id is None:
        raise UserError("funnel_id: must be a UUID", ["funnel_id"])
    site_id = payload.get("website_id")
    if not isinstance(site_id, str) or not site_id.strip():
        raise UserError("website_id: required", ["website_id"], "REQUIRED")
    step = _int_step(payload.get("current_step"))
    funnel = (await funnel_sql.get_many(rt.pools.write, [funnel_id]))[0]
    if funnel is None or funnel.website_id != site_id.strip():
        raise NotFound("Funnel not found", ["funnel_id"])
    if step > len(funnel.steps):
        raise UserError(
            f"current_step: this funnel has {len(funnel.steps)} steps", ["current_step"]
        )
    props: dict[str, Any] = {
        "funnel_id": funnel_id,
        "step": step,
        "converted": payload.get("converted") is True,
    }
    for key in ("step_name", "event_type"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            props[key] = value[:200]
    last = payload.get("last_activity")
    event = {
        "website_id": funnel.website_id,
        "event_type": FUNNEL_EVENT_TYPE,
        "visitor_id": payload.get("visitor_id"),
        "session_id": payload.get("session_id"),
        "page": _page(payload, headers),
        "timestamp": last if isinstance(last, str) else None,
        "properties": props,
    }
    result = await track(
        rt,
        TrackRequest(funnel.website_id, [event], "public", peer_ip, headers, door="funnel"),
    )
    return FunnelTrackResult(
        funnel_id, result.event_ids[0], result.visitor_ids[0], result.session_ids[0]
    )
