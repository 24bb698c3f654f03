"""Static assets served by the service itself: the tracker script (``/tracker.js`` and
the old path ``/trackers/tracker.js``)."""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

_TRACKER = resources.files("graph").joinpath("static/tracker.js").read_bytes()


async def tracker_js(request: Request) -> Response:
    return Response(
        _TRACKER,
        media_type="application/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"},
    )


def asset_routes() -> list[BaseRoute]:
    return [
        Route("/tracker.js", tracker_js, methods=["GET"]),
        Route("/trackers/tracker.js", tracker_js, methods=["GET"]),
    ]
