"""Errors the operations raise for callers to show to clients.

UserError            bad input; carries the field path and a code (400 / userErrors)
├── NotFound         absent or not visible to the caller (404 / null)
└── Forbidden        visible but the caller's scope is too small (403)
ServiceUnavailable   a dependency (the database) is down (503)
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


class ServiceUnavailable(Exception):
    """The database (or another required dependency) is unreachable right now."""
