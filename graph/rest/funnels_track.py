"""``POST /api/v1/funnels/track`` — the Seentics funnel tracker's door (reference §7.2).

Public, like the event routes. Body: ``{funnel_id, website_id, visitor_id, session_id,
current_step (1-based), completed_steps, started_at, last_activity, converted,
event_type, step_name, …}``; extra keys are ignored. Answers ``201 {"status":
"success", funnel_id, visitor_id, session_id}`` once the report is committed as a
``funnel_step`` event (see ``resolvers/funnel_track.py``); ``404 {"error": "Funnel not
found"}`` for an unknown funnel or another website's; ``400 {"error": "Invalid funnel
event data", "details": …}`` for a malformed body; ``202 {"status": "ignored"}`` for a
bot; 403/429 when ``resolvers.protection`` refuses it (Origin of another site, rate
limit); ``503`` when the database is unreachable.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from graph.http import JSONResponse, error, json_body, peer_ip, refusal, unavailable
from resolvers.errors import NotFound, Refused, ServiceUnavailable, UserError
from resolvers.funnel_track import track_funnel_step
from resolvers.runtime import Runtime


async def track_funnel(request: Request) -> Response:
    payload = await json_body(request, "funnel event")
    if isinstance(payload, Response):
        return payload
    if not isinstance(payload, dict):
        return error(400, "Invalid funnel event data", details="the body must be a JSON object")
    rt: Runtime = request.app.state.runtime
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        result = await track_funnel_step(rt, payload, peer_ip(request), headers)
    except NotFound:
        return error(404, "Funnel not found")
    except Refused as exc:
        return refusal(exc)
    except UserError as exc:
        return error(400, "Invalid funnel event data", details=exc.message, field=exc.field_path)
    except ServiceUnavailable as exc:
        return unavailable(exc)
    if result.event_id is None:
        return JSONResponse({"status": "ignored", "funnel_id": result.funnel_id}, status_code=202)
    return JSONResponse(
        {"status": "success", "funnel_id": result.funnel_id,
         "visitor_id": result.visitor_id, "session_id": result.session_id},
        status_code=201,
    )  # fmt: skip
