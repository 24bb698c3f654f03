"""``POST /api/v1/analytics/event`` and ``/event/batch`` — the Seentics tracker's doors.

Answers use the old JSON shapes, but a 201 means committed: ``event_id`` is the real id
and ``events_count`` the number of events stored. Any invalid event refuses the whole
request (400 naming ``events[i].field``) and nothing from it is stored. A page of another
site (Origin/Referer) is refused with 403 and a client over its rate limit with 429 and
``Retry-After`` (``resolvers.protection``); a full ingest queue (``INGEST_QUEUE=redis``)
answers 503 with ``Retry-After``. Beacons often
send ``text/plain``; the body is parsed as JSON whatever the content type.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from db.errors import DatabaseUnavailable
from graph.auth import AuthError, request_principal
from graph.http import JSONResponse, error, json_body, peer_ip, refusal, unavailable
from resolvers.errors import NotFound, Refused, ServiceUnavailable, UserError
from resolvers.runtime import Runtime
from resolvers.tracking import TrackRequest, track


def _failure(exc: Exception) -> Response:
    if isinstance(exc, Refused):
        return refusal(exc)
    if isinstance(exc, NotFound):
        return error(404, exc.message, field=exc.field_path)
    if isinstance(exc, UserError):
        return error(400, exc.message, field=exc.field_path, code=exc.code)
    if isinstance(exc, ServiceUnavailable):  # names what is down (or full): 503 + Retry-After
        return unavailable(exc)
    raise exc


async def _trusted(request: Request, site_id: str) -> bool:
    """The sender holds ``GLOBAL_API_KEY`` or write access to the website (a server-side
    sender such as the Seentics gateway: no per-IP limit). Bad credentials → not trusted;
    tracking stays public."""
    if "x-api-key" not in request.headers and "authorization" not in request.headers:
        return False
    try:
        who = await request_principal(request)
    except (AuthError, DatabaseUnavailable):
        return False
    return who.has("write") and who.owns(site_id)


async def _run(request: Request, site_id: str, events: list[Any]) -> Any:
    rt: Runtime = request.app.state.runtime
    headers = {k.lower(): v for k, v in request.headers.items()}
    trusted = await _trusted(request, site_id)
    req = TrackRequest(site_id, events, "public", peer_ip(request), headers, "rest", trusted)
    return await track(rt, req)


def _as_single(exc: Exception) -> Exception:
    """A user error about the one event of ``POST /event`` names its fields as that body
    does (``timestamp``, ``website_id``), not as a batch's (``events[0].timestamp``,
    ``siteId``)."""
    if not isinstance(exc, UserError):
        return exc
    field = exc.field
    if field[:2] == ["events", "0"]:
        field = field[2:]
    field = ["website_id" if f == "siteId" else f for f in field]
    message = exc.message.removeprefix("events[0].").replace("siteId", "website_id")
    return type(exc)(message, field, exc.code)


async def track_event(request: Request) -> Response:
    payload = await json_body(request, "event")
    if isinstance(payload, Response):
        return payload
    if not isinstance(payload, dict):
        return error(400, "Invalid event data", details="the body must be a JSON object")
    site_id = payload.get("website_id")
    if not isinstance(site_id, str) or not site_id.strip():
        return error(400, "Missing required fields: website_id", field="website_id")
    try:
        result = await _run(request, site_id.strip(), [payload])
    except (UserError, Refused, ServiceUnavailable) as exc:
        return _failure(_as_single(exc))
    if result.event_ids[0] is None:
        body = {"status": "ignored", "event_id": None, "visitor_id": None, "session_id": None}
        return JSONResponse(body, status_code=202)
    return JSONResponse(
        {"status": "accepted", "event_id": result.event_ids[0],
         "visitor_id": result.visitor_ids[0], "session_id": result.session_ids[0]},
        status_code=201,
    )  # fmt: skip


async def track_batch(request: Request) -> Response:
    payload = await json_body(request, "batch event")
    if isinstance(payload, Response):
        return payload
    if not isinstance(payload, dict):
        return error(400, "Invalid batch event data", details="the body must be a JSON object")
    site_id, events = payload.get("siteId"), payload.get("events")
    if events is not None and not isinstance(events, list):
        return error(400, "Invalid batch event data", details="events must be an array")
    if not isinstance(site_id, str) or not site_id.strip() or not events:
        return error(400, "Missing required fields: siteId and events")
    try:
        result = await _run(request, site_id.strip(), events)
    except (UserError, Refused, ServiceUnavailable) as exc:
        return _failure(exc)
    return JSONResponse(
        {"status": "accepted", "events_count": result.stored, "processed_at": int(time.time())},
        status_code=201,
    )
