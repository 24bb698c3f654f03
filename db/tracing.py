"""The request id of the HTTP request being served, for log lines and SQL comments.

``graph/logs.py`` sets ``request_id`` per request. ``tag(sql)`` prefixes the heavy read
statements (stats scans, funnel reports) with ``/* request_id=… */`` so that a slow
query in ``pg_stat_activity`` or the PostgreSQL log can be matched to its request. The
small hot-path statements are left untagged: a changing comment would defeat asyncpg's
prepared-statement cache.
"""

from __future__ import annotations

import contextvars
import re

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_SAFE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def tag(sql: str) -> str:
    """``sql`` with the current request id as a leading comment (unchanged without one)."""
    rid = request_id.get()
    if not rid or not _SAFE.match(rid):
        return sql
    return f"/* request_id={rid} */ {sql}"
