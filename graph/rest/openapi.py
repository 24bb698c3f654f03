"""``GET /openapi.json``: an OpenAPI 3.1 document of every REST route of the app.

The operations are enumerated from ``app.routes`` at request time (every ``Route``
but ``/graphql``), so the document cannot drift from what is served: each path is
listed as registered, with and without its trailing slash. Descriptions, parameters
and response shapes come from the ``RouteDoc`` of the compatibility routes
(``graph.rest.routes.DOCS``), from ``OTHER_DOCS`` below for the routes of other
modules (tracking, funnel tracker, privacy, health), and else from the endpoint's
docstring. Shapes: ``"string"|"integer"|"number"|"boolean"|"object"``, ``[item]`` for
arrays, ``{key: shape}`` for objects whose keys are all required unless suffixed ``?``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from graph import __version__
from graph.http import JSONResponse
from graph.rest.common import Param, RouteDoc

NOT_REST = frozenset({"/graphql"})
_ERROR = {"error": "string", "details?": "string", "field?": "string"}
_PRIVACY = (
    ("/export/{user_id}", "GET", "Export an account's analytics data (its websites)."),
    ("/delete/website/{website_id}", "DELETE", "Delete one website's analytics data."),
    ("/delete/{user_id}", "DELETE", "Delete an account's analytics data."),
    ("/anonymize/{user_id}", "PUT", "Anonymise an account's analytics data."),
    ("/retention-policies", "GET", "The data retention policy."),
    ("/cleanup", "POST", "Apply the retention policy now (admin)."),
    ("/visitor/{website_id}/{visitor_id}/export", "GET", "Export one visitor (NDJSON)."),
    ("/visitor/{website_id}/{visitor_id}", "DELETE", "Erase one visitor of one website."),
    ("/visitor/{website_id}/{visitor_id}/anonymize", "PUT",
     "Anonymise one visitor of one website."),
)
OTHER_DOCS: dict[tuple[str, str], RouteDoc] = {
    ("GET", "/health"): RouteDoc("Liveness and database status (no credentials).",
                                 public=True, errors=(503,)),
    ("GET", "/ready"): RouteDoc("Readiness: database reachable and not draining.", public=True,
                                errors=(503,)),
    ("GET", "/metrics"): RouteDoc("Prometheus metrics (text format).", public=True),
    ("GET", "/openapi.json"): RouteDoc("This document.", public=True),
    ("POST", "/api/v1/analytics/event"): RouteDoc(
        "Track one event (public; 201 once committed).", "trackEvents(input)",
        ("event_id is the stored id; 201 means committed; invalid → 400 naming the field",),
        response={"status": "string", "event_id": "string", "visitor_id": "string",
                  "session_id": "string"}, status=201, public=True,
        errors=(400, 403, 413, 429, 503)),
    ("POST", "/api/v1/analytics/event/batch"): RouteDoc(
        "Track a batch from tracker.js (public; text/plain beacons accepted).",
        "trackEvents(input)",
        ("events_count = stored events; any invalid event refuses the whole batch (400 "
         "naming its index)", "custom events are stored in the events table"),
        response={"status": "string", "events_count": "integer", "processed_at": "integer"},
        status=201, public=True, body={"siteId": "string", "domain?": "string",
                                       "events": [{"website_id?": "string"}]},
        errors=(400, 403, 413, 429, 503)),
    ("POST", "/api/v1/funnels/track"): RouteDoc(
        "A funnel-tracker.js report (public), stored as a funnel_step event.", "—",
        ("unknown funnel or another website's → 404 (old: 500)",
         "JSON-string visitor/session ids of the tracker are unwrapped"),
        response={"status": "string", "funnel_id": "string", "visitor_id": "string",
                  "session_id": "string"}, status=201, public=True,
        errors=(400, 403, 404, 429, 503)),
}  # fmt: skip
for _prefix in ("/api/v1/privacy", "/api/v1/analytics/privacy"):
    for _path, _method, _summary in _PRIVACY:
        OTHER_DOCS[(_method, _prefix + _path)] = RouteDoc(
            _summary, ("anonymizeVisitorData" if _path.endswith("/anonymize") and "visitor" in _path
                       else "deleteVisitorData (per visitor)" if "visitor" in _path else "—"),
            ("works (old: export/anonymize/cleanup always failed); also under "
             "/api/v1/analytics/privacy where the old dashboard calls it",),
            errors=(400, 401, 403, 404, 503))  # fmt: skip


def schema_of(shape: Any) -> dict[str, Any]:
    """JSON Schema of a shape (see the module docstring)."""
    if isinstance(shape, str):
        return {"type": shape}
    if isinstance(shape, list):
        item = shape[0] if shape else {}
        return {"type": "array", "items": schema_of(item) if item != {} else {}}
    if isinstance(shape, dict):
        props = {k.rstrip("?"): schema_of(v) for k, v in shape.items()}
        required = [k for k in shape if not k.endswith("?")]
        return {"type": "object", "properties": props, "required": required}
    return {}


def _param(p: Param) -> dict[str, Any]:
    return {"name": p.name, "in": p.where, "required": p.required or p.where == "path",
            "description": p.description, "schema": {"type": p.kind}}  # fmt: skip


def _operation(path: str, method: str, doc: RouteDoc, endpoint: Any) -> dict[str, Any]:
    summary = doc.summary or (endpoint.__doc__ or path).strip().splitlines()[0]
    text = f"GraphQL equivalent: {doc.graphql}."
    if doc.differences:
        text += " Differences from the old service: " + "; ".join(doc.differences) + "."
    params = [_param(p) for p in doc.params]
    named = {p["name"] for p in params}
    params += [_param(Param(name, "path", required=True)) for name in _path_names(path)
               if name not in named]  # fmt: skip
    responses: dict[str, Any] = {str(doc.status): {"description": "Success", "content": {
        "application/json": {"schema": schema_of(doc.response)}}}}  # fmt: skip
    for status in doc.errors:
        responses[str(status)] = {"description": "Error", "content": {
            "application/json": {"schema": schema_of(_ERROR)}}}  # fmt: skip
    op: dict[str, Any] = {"operationId": f"{method.lower()} {path}", "summary": summary,
                          "description": text, "parameters": params, "responses": responses}  # fmt: skip
    if doc.body is not None:
        op["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": schema_of(doc.body)}}}  # fmt: skip
    op["security"] = [] if doc.public else [{"apiKey": []}, {"bearer": []}]
    return op


def _path_names(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]


def rest_operations(routes: list[Any]) -> list[tuple[str, str, Any]]:
    """(path, method, endpoint) of every REST route, in registration order."""
    out = []
    for route in routes:
        if not isinstance(route, Route) or route.path in NOT_REST:
            continue
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                out.append((route.path, method, route.endpoint))
    return out


def build(routes: list[Any], docs: dict[tuple[str, str], RouteDoc]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for path, method, endpoint in rest_operations(routes):
        key = (method, path.rstrip("/") or "/")
        doc = docs.get(key) or OTHER_DOCS.get(key) or RouteDoc("")
        paths.setdefault(path, {})[method.lower()] = _operation(path, method, doc, endpoint)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Footfall REST API (Seentics compatible)", "version": __version__,
                 "description": "Seentics analytics service routes; numbers follow metrics.md. "
                 "Errors are {\"error\": …}. Also served: GraphQL at /graphql."},
        "paths": paths,
        "components": {"securitySchemes": {
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }  # fmt: skip


async def openapi_json(request: Request) -> Response:
    """The OpenAPI 3.1 document of every REST route (public)."""
    from graph.rest.routes import DOCS

    cached = getattr(request.app.state, "openapi_document", None)
    if cached is None:
        cached = build(list(request.app.routes), DOCS)
        request.app.state.openapi_document = cached
    return JSONResponse(cached)
