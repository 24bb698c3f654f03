"""Errors the operations raise for callers to show to clients.

UserError            bad input; carries the field path and a code (400 / userErrors)
├── NotFound         absent or not visible to the caller (404 / null)
└── Forbidden        visible but the caller's scope is too small (403)
ServiceUnavailable   a dependency (the database, the ingest queue) is down (503)
└── Overloaded       the ingest queue is full (503 + Retry-After)
Refused              well-formed, but refused by policy (not the caller's input)
├── RateLimited      over a rate limit or cost budget (429 + Retry-After / RATE_LIMITED)
└── OriginRejected   Origin/Referer does not match the tracked website (403)
"""

from __future__ import annotations

from collections.abc import Sequence


class UserError(Exception):
    """A problem with the caller's input. ``field`` is the path to the bad value."""

    code = "INVALID"

    def __init__(self, message: str, field: Sequence[str] = (), code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = list(field)
        if code is not None:
            self.code = code

    @property
    def extensions(self) -> dict[str, object]:
        """GraphQL error extensions when raised from a query field (code, field)."""
        return {"code": self.code, "field": self.field}

    @property
    def field_path(self) -> str:
        """``events[3].timestamp`` style rendering of ``field``."""
        out = ""
        for part in self.field:
            out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
        return out


class NotFound(UserError):
    code = "NOT_FOUND"


class Forbidden(UserError):
    code = "FORBIDDEN"


DATABASE_DOWN = "database unavailable, retry later"
QUEUE_DOWN = "ingest queue (Redis) unavailable, retry later"


class ServiceUnavailable(Exception):
    """The database (or another required dependency) is unreachable right now.

    ``message`` is safe to show to clients and names the dependency (the database unless
    told otherwise, e.g. ``QUEUE_DOWN``); ``str(exc)`` is the detail, for logs. GraphQL
    reports it with ``extensions.code`` ``UNAVAILABLE``, and HTTP with 503."""

    code = "UNAVAILABLE"

    def __init__(self, detail: str = "", message: str = DATABASE_DOWN) -> None:
        super().__init__(detail or message)
        self.message = message

    @property
    def extensions(self) -> dict[str, object]:
        """GraphQL error extensions (graphql-core copies them onto the error)."""
        return {"code": self.code}


class Overloaded(ServiceUnavailable):
    """The ingest queue holds ``INGEST_MAX_PENDING`` entries; retry after
    ``retry_after`` whole seconds (≥ 1). The message is safe to show to clients."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, message)
        self.retry_after = max(1, int(retry_after))


class Refused(Exception):
    """A request refused by policy. ``status`` is the HTTP answer, ``code`` the
    GraphQL ``extensions.code``; the message is safe to show to clients."""

    status = 403
    code = "FORBIDDEN"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def extensions(self) -> dict[str, object]:
        """GraphQL error extensions (graphql-core copies them onto the error)."""
        return {"code": self.code}


class RateLimited(Refused):
    """Over a limit; retry after ``retry_after`` whole seconds (≥ 1)."""

    status = 429
    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.code, "retryAfter": self.retry_after}


class OriginRejected(Refused):
    """The browser says the request comes from a page of another site."""

    status = 403
    code = "FORBIDDEN"
