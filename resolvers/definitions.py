"""metrics.md as data: the ONE place that says what every number means.

GraphQL field descriptions, ``Query.definitions`` and the REST compatibility routes
all read from here, so a definition is written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from db.queries.dimensions import PAID_MEDIUMS, SEARCH_ENGINES, SOCIAL_NETWORKS

Unit = Literal["count", "percent", "seconds", "ratio"]
Kind = Literal["EVENT", "SESSION", "REALTIME", "DERIVED"]

# Limits (stated in descriptions; enforced in resolvers/ranges.py and resolvers/stats.py).
MAX_BREAKDOWN_LIMIT = 1000
MAX_BREAKDOWN_OFFSET = 100_000
MAX_EVENTS_FIRST = 100
MAX_TOP_PAGES = 100
MAX_FILTERS = 20
MAX_FILTER_VALUES = 100
REALTIME_WINDOW_SECONDS = 300
LIVE_CACHE_SECONDS = 5
SETTLED_CACHE_SECONDS = 3600
LATE_DATA_HORIZON_SECONDS = 3600


@dataclass(frozen=True)
class MetricDefinition:
    """``kind``: EVENT (from events with ts in range), SESSION (from sessions whose
    first event is in range), REALTIME (last 5 minutes), DERIVED (from other metrics)."""

    name: str
    description: str
    unit: Unit
    kind: Kind

    @property
    def text(self) -> str:
        """The description followed by its unit, as shown in the schema."""
        return f"{self.description} Unit: {self.unit}."


_PAID = ", ".join(PAID_MEDIUMS)
METRICS: tuple[MetricDefinition, ...] = (
    MetricDefinition("pageviews", "Page views (events of type `pageview`) with ts in range.",
                     "count", "EVENT"),
    MetricDefinition("events", "Custom events (any type but pageview; session_start and "
                     "session_end are ignored) with ts in range.", "count", "EVENT"),
    MetricDefinition("visitors", "Distinct visitors (visitor_id) with any event in range.",
                     "count", "EVENT"),
    MetricDefinition("visits", "Sessions whose first event is in range (the whole session "
                     "counts, even after the range's end).", "count", "SESSION"),
    MetricDefinition("bounceRate", "100 × bounced visits / visits; a bounce is a session with "
                     "exactly one page view and no custom event. 0 when there are no visits.",
                     "percent", "SESSION"),
    MetricDefinition("visitDuration", "Mean session duration (last event − first event) over "
                     "visits, bounces counted as 0. 0 when there are no visits.",
                     "seconds", "SESSION"),
    MetricDefinition("viewsPerVisit", "All page views of the visits / visits. 0 when there "
                     "are no visits.", "ratio", "SESSION"),
    MetricDefinition("realtimeVisitors", "Distinct visitors with any event in the last 5 "
                     "minutes (server time, both ends included).", "count", "REALTIME"),
    MetricDefinition("realtimePageviews", "Page views in the last 5 minutes (server time).",
                     "count", "REALTIME"),
    MetricDefinition("share", "100 × the row's visitors / all visitors in range under the "
                     "same filters.", "percent", "DERIVED"),
    MetricDefinition("change", "100 × (current − previous) / previous, where previous is the "
                     "period of equal length right before `from`; null when previous is 0.",
                     "percent", "DERIVED"),
)  # fmt: skip
BY_NAME = {m.name: m for m in METRICS}


def describe(name: str, extra: str = "") -> str:
    """Schema description of a metric field (definition + unit), optionally extended."""
    text = BY_NAME[name].text
    return f"{text} {extra}".strip()


# --- argument and type descriptions ------------------------------------------------

TIME_ZONE = (
    "IANA time zone (e.g. Europe/Berlin) for presets, naive from/to and buckets; "
    "default: the website's zone. An unknown zone is an error naming `timezone`."
)
RANGE = (
    "The half-open range [from, to): either `from` and `to`, or a `preset` (not both). "
    "At most the website's retention (RETENTION_DAYS) long."
)
RANGE_FROM = "Start (included). ISO 8601; without an offset it is local to the query's zone."
RANGE_TO = "End (excluded). ISO 8601; without an offset it is local to the query's zone."
RANGE_PRESET = (
    "A calendar range resolved in the query's zone: days run from local midnight to the "
    "next local midnight; LAST_N_DAYS = the N local days ending with today (today "
    "included, ends at tomorrow's local midnight); LAST_24_HOURS = the 24 hours ending at "
    "the end of the current local hour."
)
FILTERS = (
    f"At most {MAX_FILTERS} filters, all of which must hold. Session-dimension filters keep "
    "matching sessions and their events; PAGE keeps matching page views (event numbers) and "
    "sessions with ≥ 1 matching page view (session numbers); EVENT and PROPERTY likewise "
    "with custom events."
)
FILTER_VALUES = (
    f"1–{MAX_FILTER_VALUES} values; the filter holds when any value matches (IS/IN, "
    "CONTAINS, MATCHES) or none does (IS_NOT/NOT_IN, NOT_CONTAINS). MATCHES takes "
    "PostgreSQL regular expressions (searched, not anchored)."
)
STATS = (
    "Metrics of one website over one range in one time zone, under filters (metrics.md). "
    f"Cached for {SETTLED_CACHE_SECONDS} s when the range ends more than "
    f"{LATE_DATA_HORIZON_SECONDS // 60} minutes ago, else {LIVE_CACHE_SECONDS} s; "
    "imports into the past invalidate."
)
SUMMARY_COMPARE = "Also compute `previous` and `change` (the equally long period before `from`)."
TIMESERIES = (
    "Zero-filled buckets covering the whole range in the query's zone. HOUR buckets start at "
    "every real instant that reads hh:00 locally (a DST fall-back gives two 01:00 buckets); "
    "DAY, WEEK (ISO, Monday) and MONTH buckets start at local midnight."
)
BUCKET_START = "Start of the bucket, ISO 8601 with the query's zone offset."
BREAKDOWN = (
    "One row per value of `dimension`, ordered by visitors descending then value ascending "
    f"(code-point order); rows with visitors > 0 only. `limit` 1–{MAX_BREAKDOWN_LIMIT} "
    f"(default 10), `offset` 0–{MAX_BREAKDOWN_OFFSET}. PROPERTY needs `property` (the key)."
)
DIMENSION = (
    "Event dimensions: PAGE (page views by path), EVENT (custom events by name), PROPERTY "
    "(custom events by a property's value; JSON null or missing → (none)). Session "
    "dimensions use the session's first event: REFERRER (host, lower case, no www.; none or "
    "own domain → (direct)), SOURCE (utm_source, else referrer host, else (direct)), "
    "CHANNEL, UTM_*, COUNTRY (ISO 3166-1 alpha-2), CITY, BROWSER, OS, DEVICE, and "
    "ENTRY_PAGE/EXIT_PAGE (first/last page view); missing values → (none)."
)
CHANNEL = (
    f"Paid (utm_medium in {_PAID}) · Email (utm source or medium email/newsletter) · "
    f"Organic Search (referrer host of {' '.join(SEARCH_ENGINES)}) · Social "
    f"({' '.join(SOCIAL_NETWORKS)}) · Referral (any other referrer) · Direct (no referrer, no "
    "UTM) · (none) (no referrer, some other UTM). The first rule that holds wins."
)
ROW_VALUE = "The dimension's value ((none) / (direct) when missing)."
REALTIME = (
    f"Activity in the last {REALTIME_WINDOW_SECONDS // 60} minutes (server time); pushed over "
    "the `realtime` subscription when new events commit."
)
TOP_PAGES = f"PAGE rows of the realtime window, at most `limit` (1–{MAX_TOP_PAGES}, default 5)."
EVENTS = (
    f"Stored events, newest first (keyset pagination on (ts, id)); `first` 1–"
    f"{MAX_EVENTS_FIRST} (default 50); `after` is a cursor from pageInfo.endCursor; "
    "optional range and filters (the event-based filter rules). Needs a token or key for "
    "this website: a public website shares its stats, not its raw events (FORBIDDEN)."
)
