"""Validation of incoming events (tracker, REST, GraphQL, import): one set of rules.

Rules (documented in the README, "Validation"):
- identifiers are rejected when too long: ``website_id`` (1–64 of ``A-Za-z0-9_.:-``),
  ``visitor_id``/``session_id`` (≤ 255), ``event_type`` (1–100), ``id`` (a UUID);
- free text is truncated: ``page``/``referrer`` 2048, ``user_agent`` 1024, ``utm_*`` 255,
  ``city``/``browser``/``os`` 100, ``screen`` 32 characters;
- any string containing a NUL character is rejected;
- ``page`` is a path starting with ``/`` or an absolute http(s) URL; it is stored as the
  path only (query and fragment dropped, UTM read from the query when not sent);
- ``timestamp`` is an ISO 8601 / RFC 3339 string (no offset = UTC). Public tracking
  keeps it only inside [received − 24 h, received + 5 min], else uses the receive time;
  imports keep any past time and reject times after received + 5 min;
- ``time_on_page`` is a non-negative integer (seconds); ``properties`` a JSON object of
  at most 8 KiB, 50 keys and nesting depth 3;
- ``country`` two letters (ISO 3166-1 alpha-2), ``device`` desktop|mobile|tablet.
Every error names the field path, e.g. ``events[3].timestamp``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import orjson

from resolvers.errors import UserError

Mode = Literal["public", "import"]

PAST_SKEW = timedelta(hours=24)
FUTURE_SKEW = timedelta(minutes=5)
MAX_PROPERTIES_BYTES = 8192
MAX_PROPERTY_KEYS = 50
MAX_PROPERTY_DEPTH = 3
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_TRUNCATE = {
    "referrer": 2048, "user_agent": 1024, "city": 100, "browser": 100, "os": 100,
    "screen": 32, **{f: 255 for f in UTM_FIELDS},
}  # fmt: skip
WEBSITE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
DEVICES = ("desktop", "mobile", "tablet")


@dataclass
class CleanEvent:
    """A validated event before enrichment. ``ts`` is the event time (UTC)."""

    index: int
    id: uuid.UUID
    website_id: str
    event_type: str
    visitor_id: str | None
    session_id: str | None
    page: str
    referrer: str | None
    user_agent: str | None
    utm: dict[str, str | None]
    country: str | None
    city: str | None
    browser: str | None
    os: str | None
    device: str | None
    screen: str | None
    time_on_page: int | None
    properties: dict[str, Any] | None
    ts: datetime


def _err(index: int, name: str, message: str, code: str = "INVALID") -> UserError:
    return UserError(f"events[{index}].{name}: {message}", ["events", str(index), name], code)


def _string(raw: dict[str, Any], index: int, name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _err(index, name, "must be a string")
    if "\x00" in value:
        raise _err(index, name, "must not contain NUL characters")
    value = value.strip()
    if not value:
        return None
    limit = _TRUNCATE.get(name)
    return value[:limit] if limit else value


def _identifier(raw: dict[str, Any], index: int, name: str, limit: int) -> str | None:
    value = _string(raw, index, name)
    if value is not None and len(value) > limit:
        raise _err(index, name, f"longer than {limit} characters", "TOO_LONG")
    return value


def unwrap_stored_id(value: str | None) -> str | None:
    """Seentics trackers may send ids as their localStorage JSON ``{"value":…,"expiresAt":…}``."""
    if value and value.startswith("{") and '"value"' in value:
        try:
            inner = orjson.loads(value).get("value")
        except (orjson.JSONDecodeError, AttributeError):
            return value
        if isinstance(inner, str) and inner:
            return inner
    return value


def parse_time(value: str) -> datetime | None:
    """Parse ISO 8601 / RFC 3339; a value without an offset is UTC. None if unparseable."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _event_time(raw: dict[str, Any], index: int, mode: Mode, received: datetime) -> datetime:
    value = raw.get("timestamp")
    if value is None or value == "":
        return received
    if not isinstance(value, str):
        raise _err(index, "timestamp", "must be an RFC 3339 string")
    ts = parse_time(value)
    if ts is None or ts.year < 1970:
        raise _err(index, "timestamp", f"not an RFC 3339 time: {value[:40]!r}")
    if mode == "import":
        if ts > received + FUTURE_SKEW:
            raise _err(index, "timestamp", "is in the future", "OUT_OF_RANGE")
        return ts
    if received - PAST_SKEW <= ts <= received + FUTURE_SKEW:
        return ts
    return received


def _page(raw: dict[str, Any], index: int) -> tuple[str, dict[str, list[str]]]:
    value = raw.get("page")
    if value is None or value == "":
        return "/", {}
    if not isinstance(value, str):
        raise _err(index, "page", "must be a string")
    if "\x00" in value:
        raise _err(index, "page", "must not contain NUL characters")
    value = value.strip()
    if value.startswith(("http://", "https://")):
        parts = urlsplit(value)
        path, query = parts.path or "/", parts.query
    elif value.startswith("/"):
        path, _, rest = value.partition("?")
        path = path.partition("#")[0] or "/"
        query = rest.partition("#")[0]
    else:
        raise _err(index, "page", "must be a path starting with / or an absolute http(s) URL")
    return path[:2048], parse_qs(query) if query else {}


def _properties(raw: dict[str, Any], index: int) -> dict[str, Any] | None:
    value = raw.get("properties")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _err(index, "properties", "must be a JSON object")
    if len(value) > MAX_PROPERTY_KEYS:
        raise _err(index, "properties", f"more than {MAX_PROPERTY_KEYS} keys", "TOO_LARGE")

    def check(v: Any, depth: int) -> None:
        if depth > MAX_PROPERTY_DEPTH:
            raise _err(index, "properties", f"nested deeper than {MAX_PROPERTY_DEPTH}", "TOO_DEEP")
        if isinstance(v, str) and "\x00" in v:
            raise _err(index, "properties", "must not contain NUL characters")
        if isinstance(v, dict):
            for k, item in v.items():
                if "\x00" in k:
                    raise _err(index, "properties", "must not contain NUL characters")
                check(item, depth + 1)
        elif isinstance(v, list):
            for item in v:
                check(item, depth + 1)

    check(value, 1)
    if len(orjson.dumps(value)) > MAX_PROPERTIES_BYTES:
        raise _err(index, "properties", f"larger than {MAX_PROPERTIES_BYTES} bytes", "TOO_LARGE")
    return value or None


def validate_event(
    raw: Any, index: int, *, site_id: str, mode: Mode, received: datetime
) -> CleanEvent:
    """Check one event (snake_case keys) against the rules above; raise ``UserError``."""
    if not isinstance(raw, dict):
        raise UserError(f"events[{index}]: must be a JSON object", ["events", str(index)])
    website_id = _string(raw, index, "website_id") or site_id
    if website_id != site_id:
        raise _err(index, "website_id", f"does not match the request's website {site_id!r}")
    raw_id = raw.get("id")
    if raw_id is None:
        event_id = uuid.uuid4()
    else:
        if not isinstance(raw_id, str):
            raise _err(index, "id", "must be a UUID string")
        try:
            event_id = uuid.UUID(raw_id)
        except ValueError:
            raise _err(index, "id", "must be a UUID") from None
    event_type = _identifier(raw, index, "event_type", 100) or "pageview"
    page, query = _page(raw, index)
    utm: dict[str, str | None] = {f: _string(raw, index, f) for f in UTM_FIELDS}
    for f in UTM_FIELDS:
        if utm[f] is None and query.get(f):
            utm[f] = query[f][0][:255] or None
    country = _string(raw, index, "country")
    if country is not None:
        if not re.fullmatch(r"[A-Za-z]{2}", country):
            raise _err(index, "country", "must be an ISO 3166-1 alpha-2 code (two letters)")
        country = country.upper()
    device = _string(raw, index, "device")
    if device is not None:
        device = device.lower()
        if device not in DEVICES:
            raise _err(index, "device", "must be one of desktop, mobile, tablet")
    top = raw.get("time_on_page")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 0):
        raise _err(index, "time_on_page", "must be a non-negative integer (seconds)")
    if isinstance(top, int) and top > 2_147_483_647:
        raise _err(index, "time_on_page", "too large")
    return CleanEvent(
        index=index,
        id=event_id,
        website_id=website_id,
        event_type=event_type,
        visitor_id=unwrap_stored_id(_identifier(raw, index, "visitor_id", 255)),
        session_id=unwrap_stored_id(_identifier(raw, index, "session_id", 255)),
        page=page,
        referrer=_string(raw, index, "referrer"),
        user_agent=_string(raw, index, "user_agent"),
        utm=utm,
        country=country,
        city=_string(raw, index, "city"),
        browser=_string(raw, index, "browser"),
        os=_string(raw, index, "os"),
        device=device,
        screen=_string(raw, index, "screen"),
        time_on_page=top,
        properties=_properties(raw, index),
        ts=_event_time(raw, index, mode, received),
    )


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake_keys(event: dict[str, Any]) -> dict[str, Any]:
    """``visitorId`` → ``visitor_id`` (GraphQL input to the tracker's field names)."""
    return {_CAMEL.sub("_", k).lower(): v for k, v in event.items()}
