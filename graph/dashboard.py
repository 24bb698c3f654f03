"""The built-in dashboard: one HTML page (no build step) at ``/`` and
``/dashboard/{website_id}``. It issues ONE GraphQL request for the cards, the chart and
the top lists, and subscribes to ``realtime`` over graphql-transport-ws. Public websites
need no token; otherwise the page asks for one (prefilled with a local admin token in
development, for a browser on the same machine: ``graph.auth.local_admin_token``)."""

from __future__ import annotations

import json
from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from graph.auth import local_admin_token
from graph.settings import Settings

_PAGE = resources.files("graph").joinpath("static/dashboard.html").read_text("utf-8")


async def dashboard(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    token = local_admin_token(settings, request)
    site = request.path_params.get("website_id")
    page = _PAGE.replace("__DEV_TOKEN__", json.dumps(token)).replace("__SITE__", json.dumps(site))
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


def dashboard_routes() -> list[BaseRoute]:
    return [
        Route("/", dashboard, methods=["GET"]),
        Route("/dashboard/{website_id}", dashboard, methods=["GET"]),
    ]
