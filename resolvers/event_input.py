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


# name → (max length, reject when longer?) for every plain string field.
_STRINGS: dict[str, tuple[int, bool]] = {
    "website_id": (64, True), "visitor_id": (255, True), "session_id": (255, True),
    "event_type": (100, True), "country": (2, False), "device": (16, False),
    **{name: (limit, False) for name, limit in _TRUNCATE.items()},
}  # fmt: skip


def _strings(raw: dict[str, Any], index: int) -> dict[str, str]:
    """The present, non-empty string fields, stripped, checked and truncated (one pass)."""
    out: dict[str, str] = {}
    for name, value in raw.items():
        spec = _STRINGS.get(name)
        if spec is None or value is None:
            continue
        if type(value) is not str:
            raise _err(index, name, "must be a string")
        if "\x00" in value:
            raise _err(index, name, "must not contain NUL characters")
        value = value.strip()
        if not value:
            continue
        limit, reject = spec
        if len(value) > limit:
            if reject:
                raise _err(index, name, f"longer than {limit} characters", "TOO_LONG")
            if name not in ("country", "device"):  # those two are checked by value below
                value = value[:limit]
        out[name] = value
    return out


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
    elif value.startswith("/"):  # the fragment first: a "?" after "#" belongs to it
        path, _, query = value.partition("#")[0].partition("?")
        path = path or "/"
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
    text = _strings(raw, index)
    website_id = text.get("website_id", site_id)
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
    page, query = _page(raw, index)
    utm: dict[str, str | None] = {f: text.get(f) for f in UTM_FIELDS}
    if query:
        for f in UTM_FIELDS:
            if utm[f] is None and query.get(f):
                utm[f] = query[f][0][:255] or None
    country = text.get("country")
    if country is not None:
        if len(country) != 2 or not country.isascii() or not country.isalpha():
            raise _err(index, "country", "must be an ISO 3166-1 alpha-2 code (two letters)")
        country = country.upper()
    device = text.get("device")
    if device is not None:
        device = device.lower()
        if device not in DEVICES:
            raise _err(index, "device", "must be one of desktop, mobile, tablet")
    top = raw.get("time_on_page")
    if top is not None and (type(top) is not int or top < 0):
        raise _err(index, "time_on_page", "must be a non-negative integer (seconds)")
    if top is not None and top > 2_147_483_647:
        raise _err(index, "time_on_page", "too large")
    visitor_id = text.get("visitor_id")
    session_id = text.get("session_id")
    return CleanEvent(
        index=index,
        id=event_id,
        website_id=website_id,
        event_type=text.get("event_type", "pageview"),
        visitor_id=unwrap_stored_id(visitor_id) if visitor_id else None,
        session_id=unwrap_stored_id(session_id) if session_id else None,
        page=page,
        referrer=text.get("referrer"),
        user_agent=text.get("user_agent"),
        utm=utm,
        country=country,
        city=text.get("city"),
        browser=text.get("browser"),
        os=text.get("os"),
        device=device,
        screen=text.get("screen"),
        time_on_page=top,
        properties=_properties(raw, index) if raw.get("properties") is not None else None,
        ts=_event_time(raw, index, mode, received),
    )


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake_keys(event: dict[str, Any]) -> dict[str, Any]:
    """``visitorId`` → ``visitor_id`` (GraphQL input to the tracker's field names)."""
    return {_CAMEL.sub("_", k).lower(): v for k, v in event.items()}
