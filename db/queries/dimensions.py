"""SQL fragments for metrics.md's dimensions and filters (shared by every stats query).

Aliases: ``e`` is a row of ``events``, ``s`` a row of ``sessions`` (the session of
``e`` on the events side). Missing values display as ``(none)``; a missing referrer
or source as ``(direct)``. Values are compared as text; regular expressions are
PostgreSQL's (ARE) ``~``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NONE_VALUE = "(none)"
DIRECT_VALUE = "(direct)"
IGNORED_EVENT_TYPES = ("session_start", "session_end")
NOT_IGNORED = "e.event_type NOT IN ('session_start', 'session_end')"

PAID_MEDIUMS = ("cpc", "ppc", "paid", "paidsearch", "display")
EMAIL_VALUES = ("email", "newsletter")
SEARCH_ENGINES = ("google.", "bing.", "duckduckgo.", "yahoo.", "yandex.", "baidu.", "ecosia.")
SOCIAL_NETWORKS = (
    "facebook.", "instagram.", "t.co", "twitter.", "x.com", "linkedin.",
    "reddit.", "youtube.", "tiktok.", "pinterest.",
)  # fmt: skip
UTM_COLUMNS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

EVENT_DIMENSIONS = frozenset({"PAGE", "EVENT", "PROPERTY"})
_SIMPLE_SESSION = {
    "UTM_SOURCE": "utm_source", "UTM_MEDIUM": "utm_medium", "UTM_CAMPAIGN": "utm_campaign",
    "UTM_TERM": "utm_term", "UTM_CONTENT": "utm_content", "COUNTRY": "country", "CITY": "city",
    "BROWSER": "browser", "OS": "os", "DEVICE": "device", "ENTRY_PAGE": "entry_page",
    "EXIT_PAGE": "exit_page",
}  # fmt: skip
SESSION_DIMENSIONS = frozenset({*_SIMPLE_SESSION, "REFERRER", "SOURCE", "CHANNEL"})


def _in_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _host_match(host: str, entries: tuple[str, ...]) -> str:
    """``entry.`` matches a host starting with it or containing ``.entry.``; any other
    entry matches the host itself or a subdomain of it."""
    parts = []
    for entry in entries:
        if entry.endswith("."):
            parts.append(f"starts_with({host}, '{entry}') OR strpos({host}, '.{entry}') > 0")
        else:
            parts.append(f"{host} = '{entry}' OR right({host}, {len(entry) + 1}) = '.{entry}'")
    return "(" + " OR ".join(parts) + ")"


def channel_sql(s: str = "s") -> str:
    """The channel of a session from its first event (the first rule that holds)."""
    host = f"{s}.referrer_host"
    all_utm_missing = " AND ".join(f"{s}.{c} IS NULL" for c in UTM_COLUMNS)
    return (
        f"CASE WHEN lower({s}.utm_medium) IN {_in_list(PAID_MEDIUMS)} THEN 'Paid'"
        f" WHEN lower({s}.utm_source) IN {_in_list(EMAIL_VALUES)}"
        f" OR lower({s}.utm_medium) IN {_in_list(EMAIL_VALUES)} THEN 'Email'"
        f" WHEN {_host_match(host, SEARCH_ENGINES)} THEN 'Organic Search'"
        f" WHEN {_host_match(host, SOCIAL_NETWORKS)} THEN 'Social'"
        f" WHEN {host} IS NOT NULL THEN 'Referral'"
        f" WHEN {all_utm_missing} THEN 'Direct'"
        f" ELSE '{NONE_VALUE}' END"
    )


def grouped(expr: str) -> str:
    """``expr`` (a text value that stats group by) in code-point order: ``COLLATE "C"``
    compares bytes, where the database's collation (even C.UTF-8, before PostgreSQL 17)
    calls strcoll for every comparison — the distinct-visitor sorts of a dashboard's
    grouping sets spent most of their time there. Groups are the same (deterministic
    collations compare equal exactly when the bytes are); ties are ordered by code point
    anyway (``COLLATE "C"`` in the ranking)."""
    return f'({expr}) COLLATE "C"'


def session_value_sql(dimension: str, s: str = "s") -> str:
    """Displayed value (never NULL) of a session dimension of the session row ``s``."""
    if dimension == "REFERRER":
        return f"coalesce({s}.referrer_host, '{DIRECT_VALUE}')"
    if dimension == "SOURCE":
        return f"coalesce({s}.utm_source, {s}.referrer_host, '{DIRECT_VALUE}')"
    if dimension == "CHANNEL":
        return channel_sql(s)
    return f"coalesce({s}.{_SIMPLE_SESSION[dimension]}, '{NONE_VALUE}')"


class Params:
    """Collects query arguments; ``add`` returns the ``$n`` placeholder of a value."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any, cast: str = "") -> str:
        self.values.append(value)
        return f"${len(self.values)}{cast}"


def event_value_sql(dimension: str, prop_param: str | None, e: str = "e") -> str:
    """Displayed value of an event dimension; NULL when the event does not apply
    (PAGE: page views only; EVENT and PROPERTY: custom events only)."""
    if dimension == "PAGE":
        return f"CASE WHEN {e}.event_type = 'pageview' THEN {e}.page END"
    if dimension == "EVENT":
        return f"CASE WHEN {e}.event_type <> 'pageview' THEN {e}.event_type END"
    assert prop_param is not None
    return (
        f"CASE WHEN {e}.event_type <> 'pageview' "
        f"THEN coalesce({e}.properties ->> {prop_param}, '{NONE_VALUE}') END"
    )


@dataclass(frozen=True)
class FilterSpec:
    """One filter: ``dimension`` (Dimension name), ``operator`` (FilterOperator name),
    ``values`` and, for PROPERTY, the property key."""

    @property
    def on_session(self) -> bool:
        """A session-dimension filter (defined before the ``property`` field shadows
        the builtin in this class body)."""
        return self.dimension in SESSION_DIMENSIONS

    dimension: str
    operator: str
    values: tuple[str, ...]
    property: str | None = None


def match_sql(value: str, operator: str, values_param: str) -> str:
    """``value`` (a non-NULL text expression) satisfies ``operator`` for the values."""
    if operator in ("IS", "IN"):
        return f"({value} = ANY({values_param}))"
    if operator in ("IS_NOT", "NOT_IN"):
        return f"NOT ({value} = ANY({values_param}))"
    contains = (
        f"EXISTS (SELECT 1 FROM unnest({values_param}) AS n(x) WHERE strpos({value}, n.x) > 0)"
    )
    if operator == "CONTAINS":
        return contains
    if operator == "NOT_CONTAINS":
        return f"NOT {contains}"
    if operator == "MATCHES":
        return f"({value} ~ ANY({values_param}))"
    raise ValueError(f"unknown filter operator {operator!r}")


def _event_match(f: FilterSpec, p: Params, e: str) -> str:
    prop = p.add(f.property, "::text") if f.dimension == "PROPERTY" else None
    value = event_value_sql(f.dimension, prop, e)
    ignored = f"{e}.event_type NOT IN ('session_start', 'session_end')"
    return f"({ignored} AND {value} IS NOT NULL AND {match_sql(value, f.operator, p.add(list(f.values), '::text[]'))})"


def event_filter_sql(f: FilterSpec, p: Params, e: str = "e", s: str = "s") -> str:
    """What the filter keeps of events (event-based numbers). Session-dimension
    filters need ``s`` joined to ``e``."""
    if f.on_session:
        return match_sql(session_value_sql(f.dimension, s), f.operator,
                         p.add(list(f.values), "::text[]"))  # fmt: skip
    return _event_match(f, p, e)


def session_filter_sql(f: FilterSpec, p: Params, s: str = "s") -> str:
    """What the filter keeps of sessions (session-based numbers): matching sessions,
    or for PAGE/EVENT/PROPERTY the sessions with at least one matching event."""
    if f.on_session:
        return match_sql(session_value_sql(f.dimension, s), f.operator,
                         p.add(list(f.values), "::text[]"))  # fmt: skip
    return (
        f"EXISTS (SELECT 1 FROM events x WHERE x.website_id = {s}.website_id"
        f" AND x.session_id = {s}.session_id AND {_event_match(f, p, 'x')})"
    )


def session_join_sql(filters: tuple[FilterSpec, ...]) -> str:
    """``JOIN sessions s`` to events ``e`` when ``filters`` need session values, else ``""``."""
    if not any(f.on_session for f in filters):
        return ""
    return "JOIN sessions s ON s.website_id = e.website_id AND s.session_id = e.session_id"
