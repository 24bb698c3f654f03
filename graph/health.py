"""``GET /health`` (the seed's fields plus the writer's queue) and ``GET /ready``.

``ingest`` describes the write path: ``mode`` ``direct`` (group commit; ``queue_depth``
rows waiting) or ``redis`` (stream lengths, the limit, what Redis says about AOF and the
durability contract). In queue mode an unreachable Redis makes the service unhealthy:
tracking cannot be acknowledged without it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from db import timescale
from db.errors import DatabaseUnavailable
from graph import __version__
from graph.http import JSONResponse
from resolvers.runtime import Runtime


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def health(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    try:
        async with asyncio.timeout(5):
            async with rt.pools.write.acquire(timeout=3) as conn:
                await conn.fetchval("SELECT 1")
                try:
                    installed = await timescale.extension_installed(conn)
                except Exception as exc:  # mirrors the seed's 503 "timescale unknown"
                    body = {"status": "unhealthy", "database": "connected",
                            "timescale": "unknown", "error": str(exc), "timestamp": _now()}  # fmt: skip
                    return JSONResponse(body, status_code=503)
                hyper = await timescale.events_is_hypertable(conn)
    except Exception as exc:
        body = {"status": "unhealthy", "database": "disconnected",
                "error": type(exc).__name__, "timestamp": _now()}  # fmt: skip
        return JSONResponse(body, status_code=503)
    try:
        ingest = await rt.writer.describe()
    except DatabaseUnavailable as exc:
        unhealthy: dict[str, object] = {
            "status": "unhealthy", "database": "connected", "timescale": installed,
            "ingest": {"mode": "redis", "error": str(exc)}, "timestamp": _now(),
        }  # fmt: skip
        return JSONResponse(unhealthy, status_code=503)
    return JSONResponse({
        "status": "healthy", "database": "connected", "timescale": installed,
        "hypertable": hyper, "timestamp": _now(), "version": __version__,
        "queue_depth": rt.writer.queue_depth,
        "ingest": ingest,
    })  # fmt: skip


async def ready(request: Request) -> Response:
    """200 once start-up finished and the database answers; 503 otherwise."""
    rt: Runtime | None = getattr(request.app.state, "runtime", None)
    if rt is None or getattr(request.app.state, "draining", False):
        return JSONResponse({"ready": False}, status_code=503)
    try:
        async with asyncio.timeout(2):
            await rt.pools.write.fetchval("SELECT 1")
    except Exception:
        return JSONResponse({"ready": False, "database": "disconnected"}, status_code=503)
    return JSONResponse({"ready": True})
