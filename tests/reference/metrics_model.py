"""Independent, plain-Python computation of the metric contract (metrics.md).

Tests feed the same raw event payloads to the service and to this module and
compare the answers.  Nothing here imports from ``graph/``, ``resolvers/`` or
``db/``; only the standard library is used, and everything is computed by
brute force over the whole event list so that the code reads like the contract.

Input
    ``events`` is a list of raw payload dicts as a tracker/importer sends them
    (snake_case keys, see ``tests/reference/traffic.py``): ``id``,
    ``website_id``, ``visitor_id``, ``session_id``, ``event_type``, ``page``,
    ``referrer``, ``utm_source`` … ``utm_content``, ``country``, ``city``,
    ``browser``, ``os``, ``device``, ``properties``, ``timestamp``.  All events
    must belong to one website (see :func:`events_for_website`).  The
    ``timestamp`` is taken as the event time (the import path; the public
    tracking path may replace far-off client times with the receive time).

Derived per event
    * ``page``: path only (query and fragment removed, absolute URL → its
      path, empty/missing → ``"/"``);
    * ``referrer_host``: host of the referrer URL, lower case, without a
      leading ``www.``; ``None`` without a referrer and when it equals the
      website's domain (also ``www.``-stripped).  Subdomains of the website
      are *not* the own domain;
    * empty strings in utm/client fields count as missing.

Sessions
    Events grouped by ``(website_id, session_id)``.  Client/source fields
    come from the earliest event (ties: smallest event id); entry page = page
    of the earliest page view, exit page = page of the latest (ties: largest
    id); duration = last − first event time in seconds.  ``session_start`` and
    ``session_end`` events are dropped before anything else.  Duplicate event
    ids are ignored (first occurrence wins).

Ranges are half-open ``[start, end)`` given as aware datetimes.  Event-based
numbers use events in range, session-based numbers use sessions whose first
event is in range (the whole session counts).

Public functions: :func:`summary`, :func:`compare`, :func:`timeseries`,
:func:`breakdown`, :func:`realtime`, plus the helpers :func:`normalize_page`,
:func:`referrer_host`, :func:`channel_of` and :func:`events_for_website`.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

Payload = Mapping[str, Any]
Filter = Mapping[str, Any]
Row = dict[str, Any]

PAGEVIEW = "pageview"
IGNORED_EVENT_TYPES = frozenset({"session_start", "session_end"})
NONE_VALUE = "(none)"
DIRECT_VALUE = "(direct)"
REALTIME_WINDOW = timedelta(minutes=5)

PAID_MEDIUMS = frozenset({"cpc", "ppc", "paid", "paidsearch", "display"})
EMAIL_VALUES = frozenset({"email", "newsletter"})
SEARCH_ENGINES = ("google.", "bing.", "duckduckgo.", "yahoo.", "yandex.", "baidu.", "ecosia.")
SOCIAL_NETWORKS = (
    "facebook.", "instagram.", "t.co", "twitter.", "x.com", "linkedin.",
    "reddit.", "youtube.", "tiktok.", "pinterest.",
)  # fmt: skip

SUMMARY_METRICS = (
    "pageviews", "events", "visitors", "visits", "bounceRate", "visitDuration", "viewsPerVisit",
)  # fmt: skip
EVENT_DIMENSIONS = frozenset({"PAGE", "EVENT", "PROPERTY"})
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Event:
    """One stored event after derivation (page path, referrer host, UTC time)."""

    id: str
    website_id: str | None
    visitor_id: str
    session_id: str
    ts: datetime
    event_type: str
    page: str
    referrer_host: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_term: str | None
    utm_content: str | None
    country: str | None
    city: str | None
    browser: str | None
    os: str | None
    device: str | None
    properties: Mapping[str, Any] | None

    @property
    def is_pageview(self) -> bool:
        """True for a page view (``event_type == "pageview"``)."""
        return self.event_type == PAGEVIEW

    @property
    def is_custom(self) -> bool:
        """True for a custom event (any type except pageview/session markers)."""
        return self.event_type != PAGEVIEW

    @property
    def order_key(self) -> tuple[datetime, str]:
        """Chronological order; equal times are ordered by event id."""
        return (self.ts, self.id)


def _strip_www(host: str) -> str:
    return host[4:] if host.startswith("www.") else host


def _normalize_domain(domain: str | None) -> str | None:
    """Website domain as compared with referrer hosts: lower case, no www., no port."""
    if not domain:
        return None
    text = domain.strip().lower()
    if "://" in text or text.startswith("//"):
        text = urlsplit(text if "://" in text else "http:" + text).hostname or ""
    text = text.split("/", 1)[0].split(":", 1)[0].rstrip(".")
    return _strip_www(text) or None


def normalize_page(raw: object) -> str:
    """Path of a page: query and fragment removed; an absolute URL gives its path.

    ``None`` or an empty result gives ``"/"``.  No other normalisation (no
    percent-decoding, trailing slashes kept).
    """
    if raw is None:
        return "/"
    text = str(raw).strip()
    if "://" in text or text.startswith("//"):
        try:
            path = urlsplit(text).path
        except ValueError:
            path = ""
    else:
        path = re.split(r"[?#]", text, maxsplit=1)[0]
    return path or "/"


def referrer_host(referrer: object, domain: str | None) -> str | None:
    """Host of a referrer URL: lower case, leading ``www.`` removed.

    ``None`` when there is no referrer, when it is not a URL with a host
    (e.g. ``"google.com"`` without a scheme or ``//``), or when the host equals
    the website's own domain (both ``www.``-stripped; subdomains are not the
    own domain).
    """
    if referrer is None:
        return None
    text = str(referrer).strip()
    if not text:
        return None
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = _strip_www(host.lower().rstrip("."))
    if not host or host == _normalize_domain(domain):
        return None
    return host


def _text(value: object) -> str | None:
    """A string field; missing or empty → None."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text or None


def _parse_ts(value: object) -> datetime:
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, str):
        ts = datetime.fromisoformat(value.strip())
    else:
        raise ValueError(f"event timestamp must be an ISO-8601 string, got {value!r}")
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


def _to_event(raw: Payload, domain: str | None, index: int) -> Event:
    visitor_id = _text(raw.get("visitor_id"))
    session_id = _text(raw.get("session_id"))
    event_type = _text(raw.get("event_type"))
    if visitor_id is None or session_id is None or event_type is None:
        raise ValueError(f"event {index}: visitor_id, session_id and event_type are required")
    props = raw.get("properties")
    if props is not None and not isinstance(props, Mapping):
        raise ValueError(f"event {index}: properties must be an object")
    utm = {name: _text(raw.get(name)) for name in UTM_FIELDS}
    tagged = parse_qs(urlsplit(str(raw.get("page") or "")).query)  # UTM in the page URL
    for name in UTM_FIELDS:
        if utm[name] is None and tagged.get(name):
            utm[name] = tagged[name][0][:255] or None
    return Event(
        id=str(raw.get("id") or f"#{index:09d}"),
        website_id=_text(raw.get("website_id")),
        visitor_id=visitor_id,
        session_id=session_id,
        ts=_parse_ts(raw.get("timestamp")),
        event_type=event_type,
        page=normalize_page(raw.get("page")),
        referrer_host=referrer_host(raw.get("referrer"), domain),
        utm_source=utm["utm_source"],
        utm_medium=utm["utm_medium"],
        utm_campaign=utm["utm_campaign"],
        utm_term=utm["utm_term"],
        utm_content=utm["utm_content"],
        country=_text(raw.get("country")),
        city=_text(raw.get("city")),
        browser=_text(raw.get("browser")),
        os=_text(raw.get("os")),
        device=_text(raw.get("device")),
        properties=props,
    )


def events_for_website(events: Iterable[Payload], website_id: str) -> list[Payload]:
    """The payloads of one website (the model refuses mixed input)."""
    return [e for e in events if e.get("website_id") == website_id]


# --------------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class Session:
    """A (website, session_id) with the fields the contract derives from its events."""

    key: tuple[str | None, str]
    events: tuple[Event, ...]  # chronological (ts, id)
    pageviews: int
    custom: int
    entry_page: str | None
    exit_page: str | None

    @property
    def first(self) -> Event:
        """Earliest event: source of referrer, UTM and client fields."""
        return self.events[0]

    @property
    def started_at(self) -> datetime:
        """Time of the first event."""
        return self.events[0].ts

    @property
    def last_seen(self) -> datetime:
        """Time of the last event."""
        return self.events[-1].ts

    @property
    def duration(self) -> float:
        """Last − first event time, seconds."""
        return (self.last_seen - self.started_at).total_seconds()

    @property
    def bounced(self) -> bool:
        """Exactly one page view and no custom event."""
        return self.pageviews == 1 and self.custom == 0


def _build_session(key: tuple[str | None, str], events: list[Event]) -> Session:
    ordered = tuple(sorted(events, key=lambda e: e.order_key))
    views = [e for e in ordered if e.is_pageview]
    return Session(
        key=key,
        events=ordered,
        pageviews=len(views),
        custom=len(ordered) - len(views),
        entry_page=views[0].page if views else None,
        exit_page=views[-1].page if views else None,
    )


@dataclass(frozen=True)
class _Dataset:
    events: tuple[Event, ...]
    sessions: Mapping[tuple[str | None, str], Session]

    def session_of(self, event: Event) -> Session:
        return self.sessions[(event.website_id, event.session_id)]


def _prepare(raw_events: Iterable[Payload], domain: str | None) -> _Dataset:
    seen: set[str] = set()
    events: list[Event] = []
    websites: set[str | None] = set()
    for index, raw in enumerate(raw_events):
        event_id = raw.get("id")
        if event_id is not None:
            if str(event_id) in seen:
                continue  # duplicate ids are ignored, like the service
            seen.add(str(event_id))
        event = _to_event(raw, domain, index)
        if event.event_type in IGNORED_EVENT_TYPES:
            continue
        websites.add(event.website_id)
        events.append(event)
    if len(websites) > 1:
        raise ValueError(f"events of several websites {sorted(map(str, websites))}: filter first")
    grouped: dict[tuple[str | None, str], list[Event]] = {}
    for event in events:
        grouped.setdefault((event.website_id, event.session_id), []).append(event)
    sessions = {key: _build_session(key, evs) for key, evs in grouped.items()}
    return _Dataset(events=tuple(events), sessions=sessions)


# --------------------------------------------------------------------------- dimensions


def _host_matches(host: str, entries: Sequence[str]) -> bool:
    for entry in entries:
        if entry.endswith("."):
            if host.startswith(entry) or ("." + entry) in host:
                return True
        elif host == entry or host.endswith("." + entry):
            return True
    return False


def channel_of(first: Event) -> str:
    """Channel of a session from its first event (first rule that holds).

    Paid · Email · Organic Search · Social · Referral · Direct · ``(none)``
    (the last one: no referrer but some UTM field that is neither paid nor
    email, e.g. only ``utm_source=foo``).
    """
    medium = (first.utm_medium or "").lower()
    source = (first.utm_source or "").lower()
    host = first.referrer_host
    if medium in PAID_MEDIUMS:
        return "Paid"
    if source in EMAIL_VALUES or medium in EMAIL_VALUES:
        return "Email"
    if host is not None and _host_matches(host, SEARCH_ENGINES):
        return "Organic Search"
    if host is not None and _host_matches(host, SOCIAL_NETWORKS):
        return "Social"
    if host is not None:
        return "Referral"
    if all(getattr(first, name) is None for name in UTM_FIELDS):
        return "Direct"
    return NONE_VALUE


def _or_none(value: str | None) -> str:
    return NONE_VALUE if value is None else value


SESSION_DIMENSIONS: dict[str, Callable[[Session], str]] = {
    "ENTRY_PAGE": lambda s: _or_none(s.entry_page),
    "EXIT_PAGE": lambda s: _or_none(s.exit_page),
    "REFERRER": lambda s: s.first.referrer_host or DIRECT_VALUE,
    "SOURCE": lambda s: s.first.utm_source or s.first.referrer_host or DIRECT_VALUE,
    "CHANNEL": lambda s: channel_of(s.first),
    "UTM_SOURCE": lambda s: _or_none(s.first.utm_source),
    "UTM_MEDIUM": lambda s: _or_none(s.first.utm_medium),
    "UTM_CAMPAIGN": lambda s: _or_none(s.first.utm_campaign),
    "UTM_TERM": lambda s: _or_none(s.first.utm_term),
    "UTM_CONTENT": lambda s: _or_none(s.first.utm_content),
    "COUNTRY": lambda s: _or_none(s.first.country),
    "CITY": lambda s: _or_none(s.first.city),
    "BROWSER": lambda s: _or_none(s.first.browser),
    "OS": lambda s: _or_none(s.first.os),
    "DEVICE": lambda s: _or_none(s.first.device),
}


def property_value(event: Event, key: str) -> str:
    """Displayed value of ``properties[key]``: strings as is, other JSON values
    as ``json.dumps`` (``True`` → ``"true"``, ``42`` → ``"42"``); a missing key
    or a JSON null → ``"(none)"``."""
    props = event.properties or {}
    value = props.get(key)
    if value is None:
        return NONE_VALUE
    return value if isinstance(value, str) else json.dumps(value)


def _event_value(dimension: str, prop: str | None) -> Callable[[Event], str | None]:
    """Displayed value of an event dimension, None when the event does not apply."""
    if dimension == "PAGE":
        return lambda e: e.page if e.is_pageview else None
    if dimension == "EVENT":
        return lambda e: e.event_type if e.is_custom else None
    if prop is None:
        raise ValueError("the PROPERTY dimension needs a property key")
    key = prop
    return lambda e: property_value(e, key) if e.is_custom else None


def _normalize_dimension(dimension: str, prop: str | None) -> tuple[str, str | None]:
    """Accept UPPER_CASE names, metrics.md's camelCase and ``property:<key>``."""
    text = dimension.strip()
    if text.lower().startswith("property:"):
        return "PROPERTY", text.split(":", 1)[1]
    name = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", text).upper()
    if name not in EVENT_DIMENSIONS and name not in SESSION_DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}")
    return name, prop


# --------------------------------------------------------------------------- filters


def _matcher(operator: str, values: Sequence[str]) -> Callable[[str], bool]:
    op = operator.strip().upper()
    if op in ("IS", "IN"):
        return lambda v: v in values
    if op in ("IS_NOT", "NOT_IN"):
        return lambda v: v not in values
    if op == "CONTAINS":
        return lambda v: any(x in v for x in values)
    if op == "NOT_CONTAINS":
        return lambda v: not any(x in v for x in values)
    if op == "MATCHES":
        patterns = [re.compile(x) for x in values]
        return lambda v: any(p.search(v) for p in patterns)
    raise ValueError(f"unknown filter operator {operator!r}")


@dataclass(frozen=True)
class _Restriction:
    """What one filter keeps: events (event-based numbers) and sessions."""

    event_ok: Callable[[Event, Session], bool]
    session_ok: Callable[[Session], bool]


def _restriction(spec: Filter) -> _Restriction:
    raw_values = spec.get("values")
    if raw_values is None and "value" in spec:
        raw_values = [spec["value"]]
    values = [str(v) for v in (raw_values or [])]
    match = _matcher(str(spec["operator"]), values)
    dimension, prop = _normalize_dimension(str(spec["dimension"]), spec.get("property"))
    if dimension in SESSION_DIMENSIONS:
        value_of = SESSION_DIMENSIONS[dimension]

        def session_ok(s: Session) -> bool:
            return match(value_of(s))

        return _Restriction(event_ok=lambda _e, s: session_ok(s), session_ok=session_ok)
    event_value = _event_value(dimension, prop)

    def event_ok(e: Event) -> bool:
        value = event_value(e)
        return value is not None and match(value)

    return _Restriction(
        event_ok=lambda e, _s: event_ok(e),
        session_ok=lambda s: any(event_ok(e) for e in s.events),
    )


def _apply_filters(ds: _Dataset, filters: Iterable[Filter]) -> tuple[list[Event], list[Session]]:
    """Events kept for event-based numbers and sessions kept for session-based ones."""
    restrictions = [_restriction(f) for f in filters]
    events = [e for e in ds.events if all(r.event_ok(e, ds.session_of(e)) for r in restrictions)]
    sessions = [s for s in ds.sessions.values() if all(r.session_ok(s) for r in restrictions)]
    return events, sessions


# --------------------------------------------------------------------------- summary


def _aware_utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")
    return value.astimezone(UTC)


def _in(ts: datetime, start: datetime, end: datetime) -> bool:
    return start <= ts < end


def _visit_stats(sessions: Sequence[Session]) -> tuple[float, float]:
    """(bounceRate %, visitDuration s) over visits; 0.0 for no visits."""
    if not sessions:
        return 0.0, 0.0
    bounces = sum(1 for s in sessions if s.bounced)
    return 100.0 * bounces / len(sessions), sum(s.duration for s in sessions) / len(sessions)


def _summarize(events: Sequence[Event], sessions: Sequence[Session]) -> dict[str, Any]:
    bounce_rate, duration = _visit_stats(sessions)
    visits = len(sessions)
    return {
        "pageviews": sum(1 for e in events if e.is_pageview),
        "events": sum(1 for e in events if e.is_custom),
        "visitors": len({e.visitor_id for e in events}),
        "visits": visits,
        "bounceRate": bounce_rate,
        "visitDuration": duration,
        "viewsPerVisit": sum(s.pageviews for s in sessions) / visits if visits else 0.0,
    }


def _select(
    ds: _Dataset, filters: Iterable[Filter], start: datetime, end: datetime
) -> tuple[list[Event], list[Session]]:
    events, sessions = _apply_filters(ds, filters)
    return (
        [e for e in events if _in(e.ts, start, end)],
        [s for s in sessions if _in(s.started_at, start, end)],
    )


def summary(
    events: Iterable[Payload],
    domain: str,
    start: datetime,
    end: datetime,
    filters: Sequence[Filter] = (),
) -> dict[str, Any]:
    """Summary metrics over ``[start, end)``.

    Keys: ``pageviews``, ``events`` (custom events), ``visitors`` (distinct
    visitors with an event in range), ``visits`` (sessions started in range),
    ``bounceRate`` (0–100), ``visitDuration`` (mean seconds, bounces included),
    ``viewsPerVisit`` (all page views of those visits / visits).  Rates are
    unrounded floats, 0.0 when there are no visits.
    """
    start, end = _aware_utc(start, "start"), _aware_utc(end, "end")
    ds = _prepare(events, domain)
    return _summarize(*_select(ds, filters, start, end))


def compare(
    events: Iterable[Payload],
    domain: str,
    start: datetime,
    end: datetime,
    filters: Sequence[Filter] = (),
) -> dict[str, Any]:
    """``{"current", "previous", "change"}``: the summary of ``[start, end)``, of
    the equally long period right before it, and per metric
    ``100 × (current − previous) / previous`` (None when previous is 0)."""
    events = list(events)
    start, end = _aware_utc(start, "start"), _aware_utc(end, "end")
    current = summary(events, domain, start, end, filters)
    previous = summary(events, domain, start - (end - start), start, filters)
    change: dict[str, float | None] = {}
    for metric in SUMMARY_METRICS:
        before = previous[metric]
        change[metric] = None if before == 0 else 100.0 * (current[metric] - before) / before
    return {"current": current, "previous": previous, "change": change}


# --------------------------------------------------------------------------- time series


INTERVALS = ("HOUR", "DAY", "WEEK", "MONTH")


def _is_local_hour_start(instant: datetime, zone: ZoneInfo) -> bool:
    local = instant.astimezone(zone)
    return local.minute == 0 and local.second == 0 and local.microsecond == 0


def _hour_starts(start: datetime, end: datetime, zone: ZoneInfo) -> list[datetime]:
    """Every instant in the range's hours that reads hh:00 locally.

    All current UTC offsets are multiples of 15 minutes, so a walk over the
    UTC quarter-hours finds them all: half-hour zones (Kolkata, Adelaide) get
    buckets starting at UTC xx:30, a DST fall-back gives two buckets that both
    read 01:00 locally, a spring-forward skips the missing hour.
    """
    step = timedelta(minutes=15)
    cursor = start.replace(minute=start.minute - start.minute % 15, second=0, microsecond=0)
    for _ in range(4 * 48):
        if _is_local_hour_start(cursor, zone):
            break
        cursor -= step
    else:  # pragma: no cover - no such zone today
        raise ValueError(f"no local hour boundary found near {start} in {zone}")
    last = end - timedelta(microseconds=1)
    starts: list[datetime] = []
    while cursor <= last:
        if _is_local_hour_start(cursor, zone):
            starts.append(cursor)
        cursor += step
    return starts


def _calendar_key(day: date, interval: str) -> date:
    if interval == "DAY":
        return day
    if interval == "WEEK":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _next_key(key: date, interval: str) -> date:
    if interval == "DAY":
        return key + timedelta(days=1)
    if interval == "WEEK":
        return key + timedelta(days=7)
    return date(key.year + key.month // 12, key.month % 12 + 1, 1)


def bucket_starts(start: datetime, end: datetime, tz: str, interval: str) -> list[datetime]:
    """Start instants (aware, UTC) of the buckets covering ``[start, end)``.

    The first bucket contains ``start`` (it may begin before it), the last one
    contains ``end − 1 µs``.  DAY/WEEK/MONTH begin at local midnight (the first
    instant of the local date when midnight is skipped); WEEK is ISO (Monday).
    """
    start, end = _aware_utc(start, "start"), _aware_utc(end, "end")
    name = interval.strip().upper()
    if name not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}")
    if end <= start:
        return []
    zone = ZoneInfo(tz)
    if name == "HOUR":
        return _hour_starts(start, end, zone)
    key = _calendar_key(start.astimezone(zone).date(), name)
    last_key = _calendar_key((end - timedelta(microseconds=1)).astimezone(zone).date(), name)
    starts: list[datetime] = []
    while key <= last_key:
        starts.append(datetime.combine(key, time(0), tzinfo=zone).astimezone(UTC))
        key = _next_key(key, name)
    return starts


def timeseries(
    events: Iterable[Payload],
    domain: str,
    start: datetime,
    end: datetime,
    tz: str,
    interval: str,
    filters: Sequence[Filter] = (),
) -> list[dict[str, Any]]:
    """Zero-filled buckets of HOUR, DAY, WEEK or MONTH in the IANA zone ``tz``.

    Each bucket: ``start`` (aware datetime in UTC: the real instant of the
    local bucket start — compare instants, not local wall times),
    ``pageviews`` and ``visitors`` (distinct within the bucket) from events
    in range, ``visits`` (sessions started in the bucket and in range),
    ``bounceRate`` and ``visitDuration`` over those visits.  A bucket spans
    ``[its start, next bucket's start)``; the last one ends at its natural end.
    """
    start, end = _aware_utc(start, "start"), _aware_utc(end, "end")
    starts = bucket_starts(start, end, tz, interval)
    ds = _prepare(events, domain)
    in_range_events, visits = _select(ds, filters, start, end)
    per_events: list[list[Event]] = [[] for _ in starts]
    per_visits: list[list[Session]] = [[] for _ in starts]
    for event in in_range_events:
        per_events[bisect_right(starts, event.ts) - 1].append(event)
    for session in visits:
        per_visits[bisect_right(starts, session.started_at) - 1].append(session)
    buckets: list[dict[str, Any]] = []
    for bucket_start, evs, sess in zip(starts, per_events, per_visits, strict=True):
        bounce_rate, duration = _visit_stats(sess)
        buckets.append(
            {
                "start": bucket_start,
                "pageviews": sum(1 for e in evs if e.is_pageview),
                "visitors": len({e.visitor_id for e in evs}),
                "visits": len(sess),
                "bounceRate": bounce_rate,
                "visitDuration": duration,
            }
        )
    return buckets


# --------------------------------------------------------------------------- breakdowns


def _row(value: str, visitors: int, total_visitors: int, **numbers: Any) -> Row:
    row: Row = {
        "value": value,
        "visitors": visitors,
        "pageviews": None,
        "events": None,
        "visits": None,
        "bounceRate": None,
        "visitDuration": None,
    }
    row.update(numbers)
    row["share"] = 100.0 * visitors / total_visitors if total_visitors else 0.0
    return row


def _order_and_page(rows: list[Row], limit: int, offset: int) -> dict[str, Any]:
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must be >= 0")
    rows = [r for r in rows if r["visitors"] > 0]
    rows.sort(key=lambda r: (-r["visitors"], r["value"]))
    return {"rows": rows[offset : offset + limit], "totalRows": len(rows)}


def _event_rows(
    events: Sequence[Event], dimension: str, prop: str | None, total_visitors: int
) -> list[Row]:
    value_of = _event_value(dimension, prop)
    groups: dict[str, list[Event]] = {}
    for event in events:
        value = value_of(event)
        if value is not None:
            groups.setdefault(value, []).append(event)
    count_key = "pageviews" if dimension == "PAGE" else "events"
    return [
        _row(value, len({e.visitor_id for e in evs}), total_visitors, **{count_key: len(evs)})
        for value, evs in groups.items()
    ]


def _session_rows(
    ds: _Dataset,
    events: Sequence[Event],
    visits: Sequence[Session],
    dimension: str,
    total_visitors: int,
) -> list[Row]:
    value_of = SESSION_DIMENSIONS[dimension]
    visitors: dict[str, set[str]] = {}
    pageviews: dict[str, int] = {}
    for event in events:
        value = value_of(ds.session_of(event))
        visitors.setdefault(value, set()).add(event.visitor_id)
        pageviews[value] = pageviews.get(value, 0) + (1 if event.is_pageview else 0)
    by_value: dict[str, list[Session]] = {}
    for session in visits:
        by_value.setdefault(value_of(session), []).append(session)
    rows: list[Row] = []
    for value in set(visitors) | set(by_value):
        sessions = by_value.get(value, [])
        bounce_rate, duration = _visit_stats(sessions)
        rows.append(
            _row(
                value,
                len(visitors.get(value, ())),
                total_visitors,
                pageviews=pageviews.get(value, 0),
                visits=len(sessions),
                bounceRate=bounce_rate,
                visitDuration=duration,
            )
        )
    return rows


def breakdown(
    events: Iterable[Payload],
    domain: str,
    start: datetime,
    end: datetime,
    dimension: str,
    property: str | None = None,
    limit: int = 10,
    offset: int = 0,
    filters: Sequence[Filter] = (),
) -> dict[str, Any]:
    """``{"rows": [...], "totalRows": n}`` for one dimension over ``[start, end)``.

    Row keys: ``value``, ``visitors``, ``pageviews``, ``events``, ``visits``,
    ``bounceRate``, ``visitDuration``, ``share``; keys that do not apply are
    None.  PAGE rows carry pageviews; EVENT and PROPERTY rows carry events
    (custom-event count); session dimensions carry pageviews (in range, in
    sessions with that value), visits, bounceRate and visitDuration (over the
    visits with that value; 0.0 without visits).  ``share`` = 100 × visitors /
    summary visitors under the same filters.  Rows with visitors > 0 only,
    ordered by visitors descending then value ascending; ``totalRows`` counts
    them before ``offset``/``limit``.  ``dimension`` is UPPER_CASE (camelCase
    and ``property:<key>`` are accepted too).
    """
    start, end = _aware_utc(start, "start"), _aware_utc(end, "end")
    name, prop = _normalize_dimension(dimension, property)
    ds = _prepare(events, domain)
    in_range_events, visits = _select(ds, filters, start, end)
    total = len({e.visitor_id for e in in_range_events})
    if name in EVENT_DIMENSIONS:
        rows = _event_rows(in_range_events, name, prop, total)
    else:
        rows = _session_rows(ds, in_range_events, visits, name, total)
    return _order_and_page(rows, limit, offset)


# --------------------------------------------------------------------------- realtime


def realtime(events: Iterable[Payload], now: datetime, limit: int = 5) -> dict[str, Any]:
    """Activity in the window ``[now − 5 min, now]`` (both ends included).

    ``visitors`` (distinct, any event), ``pageviews`` and ``topPages``: PAGE
    breakdown rows of that window (same row shape and order as
    :func:`breakdown`; share relative to the window's visitors), at most
    ``limit``.
    """
    now = _aware_utc(now, "now")
    ds = _prepare(events, None)
    window = [e for e in ds.events if now - REALTIME_WINDOW <= e.ts <= now]
    visitors = len({e.visitor_id for e in window})
    rows = _event_rows(window, "PAGE", None, visitors)
    return {
        "visitors": visitors,
        "pageviews": sum(1 for e in window if e.is_pageview),
        "topPages": _order_and_page(rows, limit, 0)["rows"],
    }
