"""Small HTTP helpers shared by the REST routes: bounded bodies, JSON, errors."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from resolvers.errors import RateLimited, Refused, ServiceUnavailable

MAX_TRACKING_BODY = 1_048_576  # bytes (1 MiB)


class BodyTooLarge(Exception):
    pass


class JSONResponse(Response):
    """orjson-encoded JSON (``application/json; charset=utf-8``)."""

    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    """The old service's error shape ``{"error": …}`` (plus optional detail keys)."""
    return JSONResponse({"error": message, **extra}, status_code=status)


def refusal(exc: Refused) -> JSONResponse:
    """A policy refusal: 403 (Origin mismatch) or 429 with ``Retry-After`` (rate limit)."""
    if isinstance(exc, RateLimited):
        resp = error(429, exc.message, retry_after=exc.retry_after)
        resp.headers["Retry-After"] = str(exc.retry_after)
        return resp
    return error(exc.status, exc.message)


def unavailable(exc: ServiceUnavailable) -> JSONResponse:
    """503 with ``Retry-After`` (1 s, or the queue's wait when it is full), naming what is
    down: ``Database unavailable, retry later`` or the ingest queue (Redis)."""
    retry_after = getattr(exc, "retry_after", 1)
    resp = error(503, exc.message[:1].upper() + exc.message[1:], retry_after=retry_after)
    resp.headers["Retry-After"] = str(retry_after)
    return resp


async def read_body(request: Request, limit: int = MAX_TRACKING_BODY) -> bytes:
    """The request body, refusing more than ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def peer_ip(request: Request | WebSocket) -> str | None:
    return request.client.host if request.client else None


async def json_body(request: Request, what: str) -> Any | Response:
    """The parsed JSON body of a tracking request (≤ 1 MiB, any content type), or the
    old service's error response: 413 when too large, 400 ``Invalid <what> data``."""
    try:
        body = await read_body(request)
    except BodyTooLarge:
        return error(413, "Request body larger than 1 MiB")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return error(400, f"Invalid {what} data", details=f"malformed JSON: {exc}")
