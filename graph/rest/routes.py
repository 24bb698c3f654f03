"""Every Seentics-compatible read/admin route (reference §3) and ``/openapi.json``.

``rest_routes()`` is added to the app's routes by ``graph.app.create_app``; each path
answers with and without a trailing slash. Order matters where paths overlap:
``/funnels/active`` and ``/funnels/compare`` come before ``/funnels/{funnel_id}``.
``DOCS`` documents them for ``/openapi.json`` and the README table.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from graph.rest import admin, analytics, analytics_lists, funnel_analytics, funnels
from graph.rest.common import RestRoute, RouteDoc, both
from graph.rest.openapi import openapi_json

ALL: list[RestRoute] = [
    *analytics_lists.ROUTES,
    *analytics.ROUTES,
    *funnels.ROUTES[:1],  # /funnels/active
    *funnel_analytics.ROUTES,  # /funnels/compare, /funnels/{id}/analytics…
    *funnels.ROUTES[1:],
    *admin.ROUTES,
]
DOCS: dict[tuple[str, str], RouteDoc] = {(r.method, r.path.rstrip("/")): r.doc for r in ALL}


def rest_routes() -> list[BaseRoute]:
    return [*both(ALL), Route("/openapi.json", openapi_json, methods=["GET"])]
