"""Start-up wiring for the protections: Redis for shared rate limits, the tracking
limits from settings, and the HTTP answer to a policy refusal.

Rate-limit keys are namespaced by the database they protect (``ff:<hash of
DATABASE_URL>``), so processes of one deployment share counters and separate
deployments (or test runs) sharing a Redis do not. Redis errors never fail a request:
the limiter falls back to process memory (``resolvers.limits``).
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import redis.asyncio as aioredis
from starlette.requests import Request
from starlette.responses import Response

from graph.http import refusal
from graph.settings import Settings
from resolvers.errors import Refused
from resolvers.limits import RateLimiter
from resolvers.protection import EXTRAS_KEY, Protection
from resolvers.runtime import Runtime

REDIS_EXTRAS_KEY = "security_redis"


def connect_redis(url: str) -> aioredis.Redis:
    """A client whose pool waits (≤ 1 s) for a free connection instead of raising, with
    short socket timeouts so an unreachable Redis is noticed quickly."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=64, timeout=1.0, socket_connect_timeout=0.5, socket_timeout=0.5
    )
    return aioredis.Redis(connection_pool=pool)


def namespace(settings: Settings, dsn: str | None) -> str:
    basis = dsn or settings.database_url or str(settings.data_dir)
    return "ff:" + hashlib.sha256(basis.encode()).hexdigest()[:10]


async def start_security(app: Any, rt: Runtime) -> None:
    """Startup hook: build the shared limiter and the tracking limits."""
    settings: Settings = app.state.settings
    client = connect_redis(settings.redis_url) if settings.redis_url else None
    rt.extras[REDIS_EXTRAS_KEY] = client
    dsn = getattr(app.state, "database_url", None) or settings.database_url
    rt.extras[EXTRAS_KEY] = Protection(
        limiter=RateLimiter(client, namespace(settings, dsn)),
        ip_per_minute=settings.rate_limit_ip_per_minute,
        website_per_minute=settings.rate_limit_website_per_minute,
        allow_loopback_everywhere=not settings.production,
    )


async def stop_security(app: Any, rt: Runtime) -> None:
    client = rt.extras.pop(REDIS_EXTRAS_KEY, None)
    if client is not None:
        with contextlib.suppress(Exception):
            await client.aclose()


async def refused_response(request: Request, exc: Exception) -> Response:
    """Exception handler: ``Refused`` → 403 / 429 + ``Retry-After``, ``{"error": …}``."""
    assert isinstance(exc, Refused)
    return refusal(exc)
