"""Privacy routes: the Seentics ones (reference §3.13) under ``/api/v1/privacy`` and
``/api/v1/analytics/privacy`` (where the old dashboard calls them), each with and
without a trailing slash, plus per-visitor routes (new):

GET    …/export/:user_id                          account export (old JSON envelope)
DELETE …/delete/:user_id                          account data: events, sessions, funnels
DELETE …/delete/website/:website_id               one website's data
PUT    …/anonymize/:user_id                       irreversible anonymisation
GET    …/retention-policies                       the RETENTION_DAYS policy, old shape
POST   …/cleanup                                  apply retention now (admin, all sites)
GET    …/visitor/:website_id/:visitor_id/export   NDJSON, one record per line (read)
DELETE …/visitor/:website_id/:visitor_id          erase one visitor (write)

Callers: ``X-API-Key`` = ``GLOBAL_API_KEY`` (everything), a stored API key or a JWT
bearer (its websites; admin scope for account-wide routes); rules in
``resolvers.privacy``. Errors keep the old ``{"error": …}`` shape: 401 no/bad
credentials, 403 scope too small, 404 absent or another tenant's, 400 bad id, 503
database down. Every deletion is one transaction with its ``audit_log`` rows.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from graph.http import JSONResponse
from graph.rest.common import guarded
from resolvers import privacy as ops
from resolvers.access import Principal
from resolvers.runtime import Runtime

log = logging.getLogger("footfall.privacy")
PREFIXES = ("/api/v1/privacy", "/api/v1/analytics/privacy")
Handler = Callable[[Request, Runtime, Principal], Awaitable[Response]]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _crash(failure: str) -> Response:
    """The old privacy routes' 500 shape."""
    body = {"success": False, "message": failure, "error": "Internal server error"}
    return JSONResponse(body, status_code=500)


def _guarded(failure: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate, run ``handler``, and map errors to the old shapes."""
    endpoint: Callable[[Request], Awaitable[Response]] = guarded(failure, handler, crash=_crash)
    return endpoint


async def _export(request: Request, rt: Runtime, who: Principal) -> Response:
    user_id = request.path_params["user_id"]
    data = await ops.export_account(rt, who, user_id)
    at = _now()
    head = {"user_id": user_id, "exported_at": at}
    if not data["website_ids"]:
        part = [{**head, "message": "No websites found for user"}]
        parts = {"events": part, "analytics": part, "funnels": part}
    else:
        sites = {**head, "website_ids": data["website_ids"]}
        parts = {
            "events": [{**sites, "events_count": data["events_count"], "data": data["events"],
                        "truncated": data["events_count"] > len(data["events"])}],
            "analytics": [{**sites, "data": data["daily"]}],
            "funnels": [{**sites, "data": data["funnels"]}],
        }  # fmt: skip
    return JSONResponse({"success": True, "message": "Analytics data exported successfully",
                         "data": {"user_id": user_id, "exported_at": at, "data": parts}})  # fmt: skip


async def _delete_account(request: Request, rt: Runtime, who: Principal) -> Response:
    counts = await ops.delete_account(rt, who, request.path_params["user_id"])
    return JSONResponse({"success": True, "message": "User analytics data deleted successfully",
                         "deleted": counts})  # fmt: skip


async def _delete_website(request: Request, rt: Runtime, who: Principal) -> Response:
    counts = await ops.delete_website_data(rt, who, request.path_params["website_id"])
    return JSONResponse({"success": True,
                         "message": "Website analytics data deleted successfully",
                         "deleted": counts})  # fmt: skip


async def _anonymize(request: Request, rt: Runtime, who: Principal) -> Response:
    counts = await ops.anonymize_account(rt, who, request.path_params["user_id"])
    return JSONResponse({"success": True, "message": "Analytics data anonymized successfully",
                         "anonymized": counts})  # fmt: skip


async def _retention(request: Request, rt: Runtime, who: Principal) -> Response:
    return JSONResponse({"success": True, "data": ops.retention_policies(rt)})


async def _cleanup(request: Request, rt: Runtime, who: Principal) -> Response:
    deleted = await ops.run_cleanup(rt, who)
    return JSONResponse({"success": True,
                         "message": "Data retention cleanup completed successfully",
                         "deleted_events": deleted, "retention_days": rt.retention_days})  # fmt: skip


async def _visitor_export(request: Request, rt: Runtime, who: Principal) -> Response:
    site, visitor = request.path_params["website_id"], request.path_params["visitor_id"]
    records = await ops.export_visitor(rt, who, site, visitor)

    async def lines() -> AsyncIterator[bytes]:
        async for record in records:
            yield orjson.dumps(record) + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson", headers={
        "Content-Disposition": f'attachment; filename="visitor-{site}.ndjson"'})  # fmt: skip


async def _visitor_delete(request: Request, rt: Runtime, who: Principal) -> Response:
    site, visitor = request.path_params["website_id"], request.path_params["visitor_id"]
    counts = await ops.delete_visitor(rt, who, site, visitor)
    return JSONResponse({"success": True, "message": "Visitor data deleted successfully",
                         "deleted": counts})  # fmt: skip


async def _visitor_anonymize(request: Request, rt: Runtime, who: Principal) -> Response:
    site, visitor = request.path_params["website_id"], request.path_params["visitor_id"]
    counts = await ops.anonymize_visitor(rt, who, site, visitor)
    return JSONResponse({"success": True, "message": "Visitor data anonymized successfully",
                         "anonymized": counts})  # fmt: skip


_ROUTES: list[tuple[str, str, str, Handler]] = [
    ("/export/{user_id}", "GET", "Failed to export analytics data", _export),
    ("/delete/website/{website_id}", "DELETE", "Failed to delete website data", _delete_website),
    ("/delete/{user_id}", "DELETE", "Failed to delete user data", _delete_account),
    ("/anonymize/{user_id}", "PUT", "Failed to anonymize analytics data", _anonymize),
    ("/retention-policies", "GET", "Failed to get retention policies", _retention),
    ("/cleanup", "POST", "Failed to run data retention cleanup", _cleanup),
    ("/visitor/{website_id}/{visitor_id}/export", "GET", "Failed to export visitor data",
     _visitor_export),
    ("/visitor/{website_id}/{visitor_id}", "DELETE", "Failed to delete visitor data",
     _visitor_delete),
    ("/visitor/{website_id}/{visitor_id}/anonymize", "PUT", "Failed to anonymize visitor data",
     _visitor_anonymize),
]  # fmt: skip


def privacy_routes() -> list[BaseRoute]:
    """Every privacy route under both prefixes, with and without a trailing slash."""
    routes: list[BaseRoute] = []
    for prefix in PREFIXES:
        for path, method, failure, handler in _ROUTES:
            endpoint: Any = _guarded(failure, handler)
            routes.append(Route(prefix + path, endpoint, methods=[method]))
            routes.append(Route(prefix + path + "/", endpoint, methods=[method]))
    return routes
