"""Funnel definitions over REST (reference §3.12): ``POST|GET /api/v1/funnels/``,
``GET /api/v1/funnels/active`` (public, for funnel-tracker.js) and
``GET|PUT|DELETE /api/v1/funnels/:funnel_id``.

Adapters over ``resolvers.funnels`` (the GraphQL ``createFunnel``/``updateFunnel``/
``deleteFunnel``/``funnel`` operations). Old step ``{id, name, type, condition, order}``
↔ Footfall step ``{name, type, pattern}``: ``page`` ↔ PAGE (``condition.page`` = path
pattern), ``custom`` ↔ CUSTOM (``condition.custom`` = event name), ``event`` ↔ EVENT
(``condition.event`` = the tracker's CSS selector; satisfied by ``/funnels/track``
reports). Step ``id`` is the 1-based position as a string and ``order`` the position.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from db.queries.funnels import FunnelRow
from graph.http import JSONResponse, error
from graph.rest.common import (
    Param,
    RestRoute,
    RouteDoc,
    guarded,
    query,
    rfc3339,
    visible_website,
)
from resolvers import funnels as ops
from resolvers.access import Principal
from resolvers.errors import NotFound, UserError
from resolvers.runtime import Runtime

PREFIX = "/api/v1/funnels"
_KINDS = {"page": "PAGE", "event": "EVENT", "custom": "CUSTOM"}
_OLD_KIND = {v: k for k, v in _KINDS.items()}


class BadFunnel(UserError):
    """``400 {"error": <message>, "details": …}`` in the old shape."""


def funnel_json(row: FunnelRow, *, with_user: bool = True) -> dict[str, Any]:
    """The old Funnel object; ``description``/``user_id`` omitted when empty."""
    steps = []
    for i, s in enumerate(row.steps):
        kind = _OLD_KIND[s["type"]]
        steps.append({"id": str(i + 1), "name": s["name"], "type": kind,
                      "condition": {kind: s["pattern"]}, "order": i + 1})  # fmt: skip
    out: dict[str, Any] = {"id": row.id, "name": row.name}
    if row.description:
        out["description"] = row.description
    out["website_id"] = row.website_id
    if with_user and row.user_id:
        out["user_id"] = row.user_id
    out.update({"steps": steps, "is_active": row.is_active,
                "created_at": rfc3339(row.created_at), "updated_at": rfc3339(row.updated_at)})  # fmt: skip
    return out


def steps_from_old(raw: Any) -> list[dict[str, Any]]:
    """Old steps → ``resolvers.funnels`` step input (validated there)."""
    if not isinstance(raw, list):
        raise UserError("steps: must be an array of steps", ["steps"])
    out = []
    for i, step in enumerate(raw):
        if not isinstance(step, dict):
            raise UserError(f"steps[{i}]: must be an object", ["steps", str(i)])
        kind = _KINDS.get(str(step.get("type") or "").lower())
        if kind is None:
            raise UserError(f"steps[{i}].type: one of page, event, custom",
                            ["steps", str(i), "type"])  # fmt: skip
        cond = step.get("condition")
        pattern = cond.get(_OLD_KIND[kind]) if isinstance(cond, dict) else None
        if not isinstance(pattern, str) or not pattern.strip():
            raise UserError(f"steps[{i}].condition.{_OLD_KIND[kind]}: required for a "
                            f"{_OLD_KIND[kind]} step", ["steps", str(i), "condition"])  # fmt: skip
        out.append({"name": step.get("name"), "type": kind, "pattern": pattern})
    return out


async def json_object(request: Request, what: str) -> dict[str, Any]:
    """The JSON object body (any content type); ``BadFunnel`` naming ``what`` otherwise."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise BadFunnel(f"{what}: malformed JSON ({exc})", ["body"]) from exc
    if not isinstance(body, dict):
        raise BadFunnel(f"{what}: the body must be a JSON object", ["body"])
    return body


def funnel_id(request: Request) -> str:
    """The path's funnel id; ``400 Invalid funnel ID`` unless a UUID."""
    raw = request.path_params["funnel_id"]
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise UserError("Invalid funnel ID", ["funnel_id"]) from None


async def visible_funnel(rt: Runtime, who: Principal, request: Request) -> FunnelRow:
    row = await ops.get_visible(rt, who, funnel_id(request))
    if row is None:
        raise NotFound("Funnel not found", ["funnel_id"])
    return row


def _invalid(exc: UserError) -> Response:
    return error(400, "Invalid funnel data", details=exc.message, field=exc.field_path)


async def create(request: Request, rt: Runtime, who: Principal) -> Response:
    try:
        body = await json_object(request, "body")
        site_id = body.get("website_id")
        if not isinstance(site_id, str) or not site_id.strip():
            raise UserError("website_id: required", ["website_id"])
        await visible_website(rt, who, site_id.strip())
        values = {"website_id": site_id.strip(), "name": body.get("name"),
                  "description": body.get("description"), "steps": steps_from_old(
                      body.get("steps")), "is_active": body.get("is_active", True) is not False}  # fmt: skip
        row = await ops.create(rt, who, values)
    except NotFound:
        raise
    except UserError as exc:
        if type(exc) is not UserError and not isinstance(exc, BadFunnel):
            raise
        return _invalid(exc)
    return JSONResponse({"success": True, "data": funnel_json(row)}, status_code=201)


async def list_funnels(request: Request, rt: Runtime, who: Principal) -> Response:
    site_id = query(request, "website_id").strip()
    if not site_id:
        raise UserError("website_id is required", ["website_id"])
    site = await visible_website(rt, who, site_id)
    rows = (await ops.list_for_websites(rt, [site.id], False))[site.id]
    return JSONResponse({"success": True, "data": [funnel_json(r) for r in rows]})


async def active(request: Request, rt: Runtime, who: Principal) -> Response:
    site_id = query(request, "website_id").strip()
    if not site_id:
        raise UserError("website_id is required", ["website_id"])
    site = await rt.websites.get(site_id)
    if site is None:
        raise NotFound("Website not found", ["website_id"])
    rows = (await ops.list_for_websites(rt, [site.id], True))[site.id]
    return JSONResponse([funnel_json(r, with_user=False) for r in rows])


async def get_one(request: Request, rt: Runtime, who: Principal) -> Response:
    return JSONResponse({"funnel": funnel_json(await visible_funnel(rt, who, request))})


async def update(request: Request, rt: Runtime, who: Principal) -> Response:
    row = await visible_funnel(rt, who, request)
    try:
        body = await json_object(request, "body")
        changes: dict[str, Any] = {}
        for key in ("name", "description", "is_active"):
            if body.get(key) is not None:
                changes[key] = body[key]
        if "is_active" in changes and not isinstance(changes["is_active"], bool):
            raise UserError("is_active: must be a boolean", ["is_active"])
        if body.get("steps") is not None:
            changes["steps"] = steps_from_old(body["steps"])
        updated = await ops.update(rt, who, row.id, changes)
    except UserError as exc:
        if type(exc) is not UserError and not isinstance(exc, BadFunnel):
            raise
        return _invalid(exc)
    return JSONResponse({"funnel": funnel_json(updated)})


async def delete(request: Request, rt: Runtime, who: Principal) -> Response:
    row = await visible_funnel(rt, who, request)
    await ops.delete(rt, who, row.id)
    return JSONResponse({"success": True, "message": "Funnel deleted successfully"})


STEP = {"id": "string", "name": "string", "type": "string",
        "condition": {"page?": "string", "event?": "string", "custom?": "string"},
        "order": "integer"}  # fmt: skip
FUNNEL = {"id": "string", "name": "string", "description?": "string", "website_id": "string",
          "user_id?": "string", "steps": [STEP], "is_active": "boolean",
          "created_at": "string", "updated_at": "string"}  # fmt: skip
BODY = {"name": "string", "description?": "string", "website_id": "string",
        "steps": [STEP], "is_active?": "boolean"}  # fmt: skip
FID = Param("funnel_id", "path", description="The funnel's id (UUID).", required=True)
WID = Param("website_id", description="The website's id (required).", required=True)
_STEPS_NOTE = ("steps map to Footfall steps: page → PAGE (path pattern, * wildcard, anchored), "
               "custom → CUSTOM (event name), event → EVENT (CSS selector; satisfied by "
               "/funnels/track reports); step id = position, order = position; 2–20 steps "
               "are required and validated (old: none)")  # fmt: skip

ROUTES = [
    RestRoute("GET", f"{PREFIX}/active", guarded("Failed to get active funnels", active,
                                                 public=True), RouteDoc(
        "Active funnels of a website, for funnel-tracker.js (public).",
        "website(id).funnels(activeOnly: true)",
        ("[] when none (old: null); unknown website → 404", "user_id is removed, as before"),
        (WID,), [{k: v for k, v in FUNNEL.items() if k != "user_id?"}], public=True,
        errors=(400, 404))),
    RestRoute("POST", f"{PREFIX}/", guarded("Failed to create funnel", create), RouteDoc(
        "Create a funnel.", "createFunnel(input)",
        ("is_active defaults to true (old: false, bug B-25)", _STEPS_NOTE,
         "needs write scope on the website; no plan limit check; user_id is the caller "
         "(token subject), not the body's", "unknown or another tenant's website → 404"),
        (), {"success": "boolean", "data": FUNNEL}, status=201, body=BODY,
        errors=(400, 401, 403, 404))),
    RestRoute("GET", f"{PREFIX}/", guarded("Failed to get funnels", list_funnels), RouteDoc(
        "Funnels of a website, newest first (active and inactive).", "website(id).funnels",
        ("[] when none (old: null)", "unknown or another tenant's website → 404"),
        (WID,), {"success": "boolean", "data": [FUNNEL]}, errors=(400, 401, 404))),
    RestRoute("GET", f"{PREFIX}/{{funnel_id}}", guarded("Failed to get funnel", get_one),
              RouteDoc("A funnel.", "funnel(id)", ("another tenant's funnel → 404",),
                       (FID,), {"funnel": FUNNEL}, errors=(400, 401, 404))),
    RestRoute("PUT", f"{PREFIX}/{{funnel_id}}", guarded("Failed to update funnel", update),
              RouteDoc("Update name, description, steps, is_active (null/absent: unchanged).",
                       "updateFunnel(input)",
                       ("unknown funnel → 404 (old: 500)", _STEPS_NOTE,
                        "other body keys (id, website_id, user_id, dates) are ignored"),
                       (FID,), {"funnel": FUNNEL}, body={k: v for k, v in BODY.items()
                                                          if k != "website_id"},
                       errors=(400, 401, 403, 404))),
    RestRoute("DELETE", f"{PREFIX}/{{funnel_id}}", guarded("Failed to delete funnel", delete),
              RouteDoc("Delete a funnel.", "deleteFunnel(input)",
                       ("stored tracker reports stay as funnel_step custom events",),
                       (FID,), {"success": "boolean", "message": "string"},
                       errors=(400, 401, 403, 404))),
]  # fmt: skip
