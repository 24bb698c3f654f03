"""Deterministic synthetic traffic for comparing the service with the reference model.

:func:`generate_traffic` returns raw event payloads exactly as a tracker or
importer sends them (snake_case keys, ISO-8601 UTC timestamps with
milliseconds), in a shuffled order, because real events arrive out of order.
Send them through the authenticated import path (``importEvents``): public
tracking would replace timestamps older than 24 h with the receive time.

The traffic deliberately covers the awkward cases of metrics.md:

* visitors with several sessions, sessions on different devices;
* bounces (one page view), one page view + a custom event (not a bounce),
  custom-event-only sessions, sessions whose first event is a custom event,
  long browsing sessions (up to 25 page views), durations from 0 s to ~2 h;
* sessions crossing boundaries — UTC midnight, local midnight in
  Asia/Kolkata, Australia/Adelaide and America/New_York, the range's day
  edges (``start + 1 day``, ``end − 1 day``), DST transitions of those
  zones and any instants passed in
  ``straddle`` (e.g. the from/to a test is going to query);
* an event exactly at ``start`` and one at the last millisecond before ``end``;
* first events carrying the referrer/UTM/client fields, later events mostly
  repeating client fields (sometimes not, to catch "first event wins" bugs)
  with no referrer or a self-referral;
* referrers from search engines, social networks, blogs, a subdomain of the
  website (a Referral), the website itself (``www.`` and bare: counts as
  none), and no referrer; UTM combinations for every channel including
  ``(none)``; pages with query strings, fragments and a few absolute URLs;
* custom events with str/int/bool properties, missing keys, ``{}`` and None.

No event is of type ``session_start``/``session_end`` unless
``include_session_markers`` is set.  Within a session timestamps are strictly
increasing, so entry/exit pages never depend on tie-breaking.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SECOND = 1000  # milliseconds
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

#: Zones whose local midnights sessions are made to straddle by default.
STRADDLE_ZONES = ("UTC", "Asia/Kolkata", "Australia/Adelaide", "America/New_York")

PAGES = (
    ["/"] * 8
    + ["/pricing"] * 5
    + ["/about", "/blog", "/docs/getting-started", "/signup", "/contact"] * 2
    + [f"/blog/post-{i}" for i in range(1, 7)]
    + [f"/product/{i}" for i in range(1, 61, 3)]
)
PAGE_DECORATIONS = ("?ref=nav", "?q=shoes&page=2", "#top", "?a=1#b")

CUSTOM_EVENTS = ("signup", "download", "click", "purchase")

GEO = (
    ("US", ("New York", "San Francisco", "Chicago")),
    ("GB", ("London", "Manchester")),
    ("DE", ("Berlin", "Munich")),
    ("IN", ("Mumbai", "Bengaluru")),
    ("AU", ("Adelaide", "Sydney")),
    ("FR", ("Paris",)),
    ("BR", ("São Paulo",)),
    ("JP", ("Tokyo",)),
)
CLIENTS = (
    ("Chrome", "Windows", "desktop"),
    ("Chrome", "macOS", "desktop"),
    ("Firefox", "Linux", "desktop"),
    ("Edge", "Windows", "desktop"),
    ("Safari", "macOS", "desktop"),
    ("Safari", "iOS", "mobile"),
    ("Chrome", "Android", "mobile"),
    ("Samsung Internet", "Android", "mobile"),
    ("Safari", "iOS", "tablet"),
    ("Chrome", "Android", "tablet"),
)

#: Values a later event of a session may carry instead of the first event's.
LATER_VALUES: dict[str, list[str | None]] = {
    "country": [None, "CA"],
    "city": [None, "Toronto"],
    "browser": [None, "Opera"],
    "os": [None, "ChromeOS"],
    "device": [None, "tablet"],
}

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# (utm_source, utm_medium, utm_campaign, utm_term, utm_content)
UTM_SETS: tuple[tuple[str | None, ...], ...] = (
    ("google", "cpc", "spring", "running shoes", "ad-1"),
    ("bing", "ppc", "brand", None, None),
    ("newsletter", "email", "may-digest", None, None),
    ("NewsLetter", None, "weekly", None, None),
    ("facebook", "paid", "retarget", None, "banner-a"),
    ("partner-site", "display", "q2", None, "skyscraper"),
    ("foo", None, None, None, None),
    (None, None, "orphan-campaign", None, None),
    ("twitter", "social", "launch", None, None),
)

SESSION_KINDS = (
    ("bounce", 24),
    ("pageview_custom", 10),
    ("custom_only", 6),
    ("custom_first", 6),
    ("single_custom", 3),
    ("browse", 30),
    ("deep", 10),
    ("long", 11),
)


def _referrers(domain: str) -> list[tuple[str | None, int]]:
    bare = domain.lower().removeprefix("www.")
    return [
        (None, 30),
        ("https://www.google.com/search?q=footfall+analytics", 10),
        ("https://news.google.co.uk/", 3),
        ("https://www.bing.com/search?q=x", 3),
        ("https://duckduckgo.com/", 2),
        ("https://t.co/abc", 4),
        ("https://x.com/someone/status/1", 2),
        ("https://www.facebook.com/", 4),
        ("https://l.facebook.com/l.php?u=x", 1),
        ("https://reddit.com/r/x", 3),
        ("https://www.linkedin.com/feed/", 2),
        ("https://m.youtube.com/watch?v=1", 1),
        ("https://some-blog.example.org/post", 5),
        ("https://WWW.Other-Blog.Example.NET:8443/a?b=c", 2),
        (f"https://blog.{bare}/hello", 2),
        (f"https://www.{bare}/other", 3),
        (f"https://{bare}/x", 3),
    ]


@dataclass
class _Visitor:
    visitor_id: str
    country: str | None
    city: str | None
    client: tuple[str, str, str]


class _Generator:
    """Holds the seeded RNG and the range (integer milliseconds since the epoch)."""

    def __init__(self, seed: int, website_id: str, domain: str, first_ms: int, last_ms: int):
        self.rng = random.Random(seed)
        self.website_id = website_id
        self.domain = domain.lower().removeprefix("www.")
        self.first_ms = first_ms  # earliest allowed event time
        self.last_ms = last_ms  # latest allowed event time (inclusive)
        self.referrers = _referrers(domain)

    # ----------------------------------------------------------------- helpers

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def weighted(self, options: list[tuple[Any, int]] | tuple[tuple[Any, int], ...]) -> Any:
        values = [v for v, _ in options]
        weights = [w for _, w in options]
        return self.rng.choices(values, weights)[0]

    def page(self) -> str:
        path: str = self.rng.choice(PAGES)
        roll = self.rng.random()
        if roll < 0.06:
            return path + self.rng.choice(PAGE_DECORATIONS)
        if roll < 0.08:
            return f"https://{self.domain}{path}?from=abs"
        return path

    def properties(self, name: str) -> dict[str, Any] | None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.12:
            return None
        if roll < 0.18:
            return {}
        if name == "signup":
            props: dict[str, Any] = {"plan": rng.choice(["free", "pro", "team"])}
            if rng.random() < 0.5:
                props["trial"] = rng.random() < 0.5
            return props
        if name == "download":
            return {
                "file": rng.choice(["report.pdf", "logo.svg"]),
                "size": rng.choice([1, 42, 1024]),
            }
        if name == "purchase":
            return {"plan": rng.choice(["pro", "team"]), "seats": rng.randint(1, 5), "trial": False}
        return {"button": rng.choice(["cta", "nav", "footer"])}

    def new_visitor(self) -> _Visitor:
        country, cities = self.rng.choice(GEO)
        city: str | None = self.rng.choice(cities)
        geo_country: str | None = country
        if self.rng.random() < 0.05:
            geo_country, city = None, None
        elif self.rng.random() < 0.12:
            city = None
        return _Visitor(self.uid(), geo_country, city, self.rng.choice(CLIENTS))

    # ------------------------------------------------------------ session shape

    def event_types(self, kind: str) -> list[str]:
        rng = self.rng

        def custom() -> str:
            return rng.choice(CUSTOM_EVENTS)

        if kind == "bounce":
            return ["pageview"]
        if kind == "pageview_custom":
            return ["pageview", custom()]
        if kind == "custom_only":
            return [custom() for _ in range(rng.randint(1, 3))]
        if kind == "single_custom":
            return [custom()]
        if kind == "custom_first":
            return [custom()] + ["pageview"] * rng.randint(1, 4)
        count = {"browse": (2, 6), "deep": (8, 25), "long": (3, 10)}[kind]
        types = ["pageview"] * rng.randint(*count)
        for _ in range(rng.choice([0, 0, 1, 2])):
            types.insert(rng.randint(1, len(types)), custom())
        return types

    def gaps(self, kind: str, n_events: int) -> list[int]:
        """Milliseconds between consecutive events (all >= 1)."""
        rng = self.rng
        if n_events <= 1:
            return []
        if kind == "long":
            total = rng.randint(30 * MINUTE, 2 * HOUR)
            cuts = sorted(rng.sample(range(1, total), n_events - 2))
            bounds = [0, *cuts, total]
            return [b - a for a, b in zip(bounds, bounds[1:], strict=False)]
        low, high = (1 * SECOND, 3 * MINUTE) if kind == "deep" else (2 * SECOND, 5 * MINUTE)
        return [rng.randint(low, high) for _ in range(n_events - 1)]

    def place(self, duration: int, straddle_ms: int | None, at_edge: str | None) -> int:
        """First-event time of a session of ``duration`` ms inside the range."""
        latest_start = self.last_ms - duration
        if at_edge == "start":
            return self.first_ms
        if at_edge == "end":
            return latest_start
        if straddle_ms is not None and duration >= 2:
            low = max(self.first_ms, straddle_ms - duration + 1)
            high = min(latest_start, straddle_ms - 1)
            if low <= high:
                return self.rng.randint(low, high)
        return self.rng.randint(self.first_ms, latest_start)

    # ----------------------------------------------------------------- session

    def session(
        self,
        visitor: _Visitor,
        kind: str,
        straddle_ms: int | None = None,
        at_edge: str | None = None,
    ) -> list[dict[str, Any]]:
        rng = self.rng
        types = self.event_types(kind)
        gaps = self.gaps(kind, len(types))
        span = self.last_ms - self.first_ms
        if sum(gaps) > span:  # a short range: squeeze the session in
            gaps = [max(1, g * span // (2 * sum(gaps))) for g in gaps]
        start_ms = self.place(sum(gaps), straddle_ms, at_edge)
        times = [start_ms]
        for gap in gaps:
            times.append(times[-1] + gap)

        client = visitor.client if rng.random() < 0.85 else rng.choice(CLIENTS)
        device: str | None = client[2] if rng.random() > 0.05 else None
        referrer = self.weighted(self.referrers)
        utm: tuple[str | None, ...] = (None,) * 5
        if rng.random() < 0.2:
            utm = rng.choice(UTM_SETS)
            if utm[0] == "google" and rng.random() < 0.7:
                referrer = "https://www.google.com/search?q=x"
        session_id = self.uid()
        current_page = self.page()
        payloads: list[dict[str, Any]] = []
        for index, (event_type, ms) in enumerate(zip(types, times, strict=True)):
            first = index == 0
            if event_type == "pageview" and not first:
                previous, current_page = current_page, self.page()
            else:
                previous = current_page
            fields: dict[str, Any] = {
                "country": visitor.country,
                "city": visitor.city,
                "browser": client[0],
                "os": client[1],
                "device": device,
            }
            if not first and rng.random() < 0.1:  # later events may disagree
                mutated = rng.choice(list(fields))
                fields[mutated] = rng.choice(LATER_VALUES[mutated])
            page = current_page
            if first:
                event_referrer = referrer
                event_utm = utm
                if utm == (None,) * 5 and "#" not in page and rng.random() < 0.1:
                    # tagged in the landing page's URL only (design: UTM from the URL)
                    tags = zip(UTM_FIELDS, rng.choice(UTM_SETS), strict=True)
                    page += ("&" if "?" in page else "?") + urlencode(
                        {name: value for name, value in tags if value is not None})
            else:
                event_referrer = (
                    None
                    if rng.random() < 0.7
                    else rng.choice(
                        [f"https://www.{self.domain}{_path(previous)}", f"https://{self.domain}/x"]
                    )
                )
                event_utm = utm if rng.random() < 0.15 else (None,) * 5
            payloads.append(
                {
                    "id": self.uid(),
                    "website_id": self.website_id,
                    "visitor_id": visitor.visitor_id,
                    "session_id": session_id,
                    "event_type": event_type,
                    "page": page,
                    "referrer": event_referrer,
                    "utm_source": event_utm[0],
                    "utm_medium": event_utm[1],
                    "utm_campaign": event_utm[2],
                    "utm_term": event_utm[3],
                    "utm_content": event_utm[4],
                    **fields,
                    "properties": None if event_type == "pageview" else self.properties(event_type),
                    "timestamp": _format_ms(ms),
                }
            )
        return payloads


def _to_us(value: datetime) -> int:
    return (value - EPOCH) // timedelta(microseconds=1)


def _format_ms(ms: int) -> str:
    instant = EPOCH + timedelta(milliseconds=ms)
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _path(page: str) -> str:
    """The path of a generated page (which may be an absolute URL)."""
    if "://" in page:
        page = "/" + page.split("://", 1)[1].partition("/")[2]
    return page


def _dst_transitions(start: datetime, end: datetime) -> list[datetime]:
    """Instants (to the minute) where a STRADDLE_ZONES offset changes within the range."""
    found: list[datetime] = []
    for name in STRADDLE_ZONES:
        zone = ZoneInfo(name)
        hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        while hour < end:
            after = hour + timedelta(hours=1)
            if hour.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset():
                low, high = hour, after  # offset(low) != offset(high); find the change
                while high - low > timedelta(minutes=1):
                    middle = low + (high - low) / 2
                    if middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                        low = middle
                    else:
                        high = middle
                found.append(high)
            hour = after
    return found


def _local_midnights(start: datetime, end: datetime) -> list[datetime]:
    """Local midnights of STRADDLE_ZONES within the range."""
    points: list[datetime] = []
    for name in STRADDLE_ZONES:
        zone = ZoneInfo(name)
        day: date = start.astimezone(zone).date()
        while True:
            midnight = datetime.combine(day, time(0), tzinfo=zone)
            if midnight >= end:
                break
            points.append(midnight)
            day += timedelta(days=1)
    return points


def _straddles(
    rng: random.Random, start: datetime, end: datetime, extra: list[datetime], n_visitors: int
) -> list[datetime]:
    """Instants that sessions will cross.

    Always: ``extra``, ``start + 1 day``, ``end − 1 day``, the middle of the
    range and DST transitions of STRADDLE_ZONES; plus a sample of local
    midnights (at least 8, or one per three visitors, so that they do not
    swamp the rest of the traffic).
    """
    must = [*extra, start + timedelta(days=1), end - timedelta(days=1), start + (end - start) / 2]
    must += _dst_transitions(start, end)
    midnights = _local_midnights(start, end)
    sample = rng.sample(midnights, min(len(midnights), max(8, n_visitors // 3)))
    unique = {p.astimezone(UTC) for p in must + sample}
    return sorted(p for p in unique if start < p < end)


def generate_traffic(
    seed: int,
    website_id: str,
    domain: str,
    start: datetime,
    end: datetime,
    n_visitors: int = 60,
    *,
    straddle: list[datetime] | None = None,
    include_session_markers: bool = False,
) -> list[dict[str, Any]]:
    """Raw event payloads for ``n_visitors`` visitors, all timed in ``[start, end)``.

    Deterministic for a given ``seed`` (and arguments); the list is shuffled,
    not sorted by time.  ``start``/``end`` must be aware and at least one
    minute apart.  ``straddle`` adds instants that some sessions must cross
    (besides the default local midnights and day edges), e.g. the from/to a
    test will query so that sessions start before ``from`` and go on after it.
    ``include_session_markers`` adds ``session_start``/``session_end`` events
    around some sessions (the contract ignores them).  Each payload has the
    keys ``id``, ``website_id``, ``visitor_id``, ``session_id``,
    ``event_type``, ``page``, ``referrer``, ``utm_source``, ``utm_medium``,
    ``utm_campaign``, ``utm_term``, ``utm_content``, ``country``, ``city``,
    ``browser``, ``os``, ``device``, ``properties``, ``timestamp``.
    """
    if any(t.tzinfo is None for t in [start, end, *(straddle or [])]):
        raise ValueError("start, end and straddle must be aware datetimes")
    first_ms = -(-_to_us(start) // 1000)  # ceil: the first millisecond >= start
    last_ms = -(-_to_us(end) // 1000) - 1  # the last millisecond < end
    if last_ms - first_ms < MINUTE:
        raise ValueError("the range must be at least one minute long")
    if n_visitors < 1:
        raise ValueError("n_visitors must be >= 1")
    gen = _Generator(seed, website_id, domain, first_ms, last_ms)
    rng = gen.rng

    visitors = [gen.new_visitor() for _ in range(n_visitors)]
    plan: list[tuple[_Visitor, str, int | None, str | None]] = []
    kinds = [k for k, _ in SESSION_KINDS]
    # Every kind at least once, then random sessions; visitor 0 comes back often.
    for index, kind in enumerate(kinds):
        plan.append((visitors[index % n_visitors], kind, None, None))
    for visitor in visitors:
        for _ in range(gen.weighted([(1, 55), (2, 25), (3, 12), (4, 5), (5, 3)])):
            plan.append((visitor, gen.weighted(SESSION_KINDS), None, None))
    plan.extend((visitors[0], rng.choice(["browse", "bounce"]), None, None) for _ in range(3))
    # Sessions crossing midnights and range edges.
    for index, boundary in enumerate(_straddles(rng, start, end, straddle or [], n_visitors)):
        ms = _to_us(boundary) // 1000
        if first_ms < ms <= last_ms:
            kind = ("browse", "long", "deep", "custom_first")[index % 4]
            plan.append((rng.choice(visitors), kind, ms, None))
    plan.append((rng.choice(visitors), "browse", None, "start"))
    plan.append((rng.choice(visitors), "deep", None, "end"))

    events: list[dict[str, Any]] = []
    for visitor, kind, straddle_ms, edge in plan:
        session = gen.session(visitor, kind, straddle_ms, edge)
        if include_session_markers and rng.random() < 0.3:
            session = _with_markers(gen, session)
        events.extend(session)
    rng.shuffle(events)
    return events


def _with_markers(gen: _Generator, session: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add session_start (at the first event's time) and session_end (at the last's)."""
    first, last = session[0], session[-1]
    start_marker = dict(first, id=gen.uid(), event_type="session_start", properties=None)
    end_marker = dict(last, id=gen.uid(), event_type="session_end", properties=None)
    return [start_marker, *session, end_marker]
