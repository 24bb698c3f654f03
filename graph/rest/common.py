"""Shared plumbing of the Seentics-compatible REST routes (reference §2, §3).

* ``guarded``: authenticate (``X-API-Key`` = ``GLOBAL_API_KEY``, stored API keys, JWT
  bearer — ``graph.auth``), refuse anonymous callers on protected routes with the old
  ``401 {"error": "Missing API key"}``, and map operation errors to the old
  ``{"error": …}`` shape: 400 bad input, 401 bad credentials, 403 scope too small,
  404 absent or another tenant's, 503 database down (``Retry-After: 1``), 500
  ``{"error": "Failed to …"}`` for anything unexpected (logged, never shown).
* Query parameters the old way: ``days``/``limit``/``page`` are used when they parse as
  a positive integer, else the default (no error); ``limit`` is capped at 1000 and
  ``days`` at the data retention.
* ``days=N`` is the range [now − N days, now) in UTC.
* ``RestRoute``: a route and its documentation (OpenAPI, the README table).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from db.errors import DatabaseUnavailable, QueryTimeout
from db.queries.dimensions import FilterSpec
from db.queries.websites import WebsiteRow
from graph.auth import AuthError, request_principal
from graph.http import error, refusal
from resolvers import stats as stats_ops
from resolvers.access import Principal
from resolvers.errors import Forbidden, NotFound, Refused, ServiceUnavailable, UserError
from resolvers.filters import RawFilter, validate_filters
from resolvers.ranges import Range
from resolvers.runtime import Runtime
from resolvers.stats_types import Result, StatsKey
from resolvers.websites import get_visible

log = logging.getLogger("footfall.rest")
MAX_LIMIT = 1000
GO_INT_MAX = 2**63 - 1  # strconv.Atoi on a 64-bit platform fails above this
Handler = Callable[[Request, Runtime, Principal], Awaitable[Response]]

#: Dashboard filters of the old frontend (``AnalyticsFilters``) → metrics.md dimensions.
QUERY_FILTERS = {
    "country": "COUNTRY", "device": "DEVICE", "browser": "BROWSER", "os": "OS",
    "utm_source": "UTM_SOURCE", "utm_medium": "UTM_MEDIUM", "utm_campaign": "UTM_CAMPAIGN",
    "page_path": "PAGE",
}  # fmt: skip


@dataclass(frozen=True)
class Param:
    """A documented parameter: ``where`` is query or path; ``kind`` a JSON type."""

    name: str
    where: str = "query"
    kind: str = "string"
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class RouteDoc:
    """What the OpenAPI document and the README table say about a route.

    ``response``: a shape (see ``graph.rest.openapi.schema_of``) of the success body.
    """

    summary: str
    graphql: str = "—"
    differences: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    response: Any = None
    status: int = 200
    public: bool = False
    body: Any = None
    errors: tuple[int, ...] = ()


@dataclass(frozen=True)
class RestRoute:
    method: str
    path: str
    endpoint: Callable[[Request], Awaitable[Response]]
    doc: RouteDoc = field(default_factory=lambda: RouteDoc(""))


def both(rest: Sequence[RestRoute]) -> list[BaseRoute]:
    """Starlette routes, each path with and without a trailing slash (no redirects)."""
    out: list[BaseRoute] = []
    for r in rest:
        base = r.path.rstrip("/")
        out.append(Route(base, r.endpoint, methods=[r.method]))
        out.append(Route(base + "/", r.endpoint, methods=[r.method]))
    return out


def guarded(
    failure: str,
    handler: Handler,
    *,
    public: bool = False,
    crash: Callable[[str], Response] | None = None,
) -> Callable[..., Any]:
    """The endpoint: authentication, then ``handler``, with errors in the old shapes.
    Public routes ignore bad credentials (the caller is anonymous). ``crash`` builds the
    500 body from ``failure`` (default ``{"error": failure}``)."""

    async def endpoint(request: Request) -> Response:
        rt: Runtime = request.app.state.runtime
        try:
            try:
                who = await request_principal(request)
            except AuthError as exc:
                if not public:
                    return error(401, str(exc))
                who = Principal.anonymous()
            if who.scope is None and not public:
                return error(401, "Missing API key")
            return await handler(request, rt, who)
        except NotFound as exc:
            return error(404, exc.message)
        except Forbidden as exc:
            return error(403, exc.message)
        except UserError as exc:
            return error(400, exc.message, field=exc.field_path)
        except Refused as exc:
            return refusal(exc)
        except (DatabaseUnavailable, QueryTimeout, ServiceUnavailable):
            resp = error(503, "Database unavailable, retry later")
            resp.headers["Retry-After"] = "1"
            return resp
        except Exception:
            log.exception("REST route %s %s failed", request.method, request.url.path)
            return crash(failure) if crash is not None else error(500, failure)

    endpoint.__doc__ = handler.__doc__
    return endpoint


def query(request: Request, name: str) -> str:
    """A query parameter as gin's ``c.Query`` reads it: its first value ("" if absent).
    (Starlette's ``query_params.get`` returns the last one.)"""
    values = request.query_params.getlist(name)
    return values[0] if values else ""


def positive_int(request: Request, name: str, default: int, cap: int | None = None) -> int:
    """The old parsing (Go's ``strconv.Atoi``, sign allowed): a positive integer that
    fits Go's ``int``, else ``default``; then at most ``cap``."""
    raw = query(request, name).strip()
    digits = raw.removeprefix("+")
    parsed = int(digits) if digits.isascii() and digits.isdigit() else 0
    value = parsed if 0 < parsed <= GO_INT_MAX else default
    return min(value, cap) if cap is not None else value


def days_param(request: Request, rt: Runtime, default: int = 7) -> int:
    """``days``: positive integer else ``default``, at most the retention (days)."""
    return positive_int(request, "days", default, rt.retention_days)


def limit_param(request: Request, default: int = 10) -> int:
    return positive_int(request, "limit", default, MAX_LIMIT)


def days_range(days: int, now: datetime | None = None) -> Range:
    """``[now − days, now)`` in UTC."""
    end = now or datetime.now(UTC)
    return Range(end - timedelta(days=days), end, "UTC")


def query_filters(request: Request) -> tuple[FilterSpec, ...]:
    """The dashboard's optional filters (``country=DE&device=mobile…``) as IS filters."""
    raw = [
        RawFilter(dim, "IS", [value])
        for name, dim in QUERY_FILTERS.items()
        if (value := query(request, name).strip())
    ]
    return validate_filters(raw)


def rfc3339(value: datetime) -> str:
    """ISO 8601 / RFC 3339; UTC as ``Z`` (Go's rendering)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


async def visible_website(rt: Runtime, who: Principal, website_id: str) -> WebsiteRow:
    """The website if the caller may read it; else ``NotFound`` ("Website not found")."""
    site = await get_visible(rt, who, website_id)
    if site is None:
        raise NotFound("Website not found", ["website_id"])
    return site


async def load(rt: Runtime, keys: list[StatsKey]) -> list[Result]:
    """``resolvers.stats.load_stats`` (the GraphQL fields' batch function); raises the
    first error. Keys of one scope share one statement."""
    found = await stats_ops.load_stats(rt, keys)
    for item in found:
        if isinstance(item, Exception):
            raise item
    return [r for r in found if not isinstance(r, Exception)]
