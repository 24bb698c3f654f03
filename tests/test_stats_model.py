"""The stats read path against the independent reference model (metrics.md).

Given generated traffic imported with ``importEvents``, when a dashboard asks for the
summary (with comparison), every interval and every dimension — in the website's zone
and in others, across a DST change, with and without filters — then every number
equals the reference model's (floats within 1e-6).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from resolvers.ranges import preset_range
from tests.conftest import make_website
from tests.reference import metrics_model as model
from tests.reference.traffic import generate_traffic
from tests.stats_support import (
    ALL_DIMENSIONS,
    BUCKET_FIELDS,
    ROW_FIELDS,
    close,
    dashboard_query,
    import_events,
    same_summary,
    stats,
)

DOMAIN = "shop.example"
NY = ZoneInfo("America/New_York")
# Traffic around the 2026-11-01 fall-back in New York; queries a local week around it.
TRAFFIC = (datetime(2026, 10, 19, tzinfo=UTC), datetime(2026, 11, 10, tzinfo=UTC))
Q_FROM = datetime(2026, 10, 28, tzinfo=NY)
Q_TO = datetime(2026, 11, 4, tzinfo=NY)
PREVIOUS_FROM = Q_FROM - (Q_TO - Q_FROM)
# Adelaide's 2026-04-05 fall-back (03:00 → 02:00 local), for HOUR/DAY buckets.
ADL = ZoneInfo("Australia/Adelaide")
ADL_TRAFFIC = (datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 4, 9, tzinfo=UTC))
ADL_FROM = datetime(2026, 4, 4, tzinfo=ADL)
ADL_TO = datetime(2026, 4, 7, tzinfo=ADL)


@pytest.fixture(scope="module")
async def ny_site(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> tuple[str, list]:
    site = await make_website(client, admin_headers, domain=DOMAIN, timezone="America/New_York")
    events = generate_traffic(20261101, site, DOMAIN, *TRAFFIC, n_visitors=220,
                              straddle=[Q_FROM, Q_TO, PREVIOUS_FROM],
                              include_session_markers=True)  # fmt: skip
    await import_events(client, admin_headers, site, events)
    return site, events


@pytest.fixture(scope="module")
async def adelaide_site(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> tuple[str, list]:
    site = await make_website(client, admin_headers, domain=DOMAIN, timezone="Australia/Adelaide")
    events = generate_traffic(20260405, site, DOMAIN, *ADL_TRAFFIC, n_visitors=90,
                              straddle=[ADL_FROM, ADL_TO])  # fmt: skip
    await import_events(client, admin_headers, site, events)
    return site, events


def check_buckets(api: list[dict[str, Any]], expected: list[dict[str, Any]], tz: str,
                  where: str) -> None:  # fmt: skip
    assert len(api) == len(expected), f"{where}: {len(api)} buckets, model {len(expected)}"
    zone = ZoneInfo(tz)
    for i, (a, m) in enumerate(zip(api, expected, strict=True)):
        start = datetime.fromisoformat(a["start"])
        assert start == m["start"], f"{where}[{i}].start: {a['start']} != {m['start']}"
        assert start.utcoffset() == m["start"].astimezone(zone).utcoffset(), f"{where}[{i}] offset"
        for name in BUCKET_FIELDS.split()[1:]:
            close(a[name], m[name], f"{where}[{i}].{name}")


def check_rows(api: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    assert api["totalRows"] == expected["totalRows"], f"{where}.totalRows"
    assert [r["value"] for r in api["rows"]] == [r["value"] for r in expected["rows"]], where
    for i, (a, m) in enumerate(zip(api["rows"], expected["rows"], strict=True)):
        for name in ROW_FIELDS.split():
            close(a[name], m[name], f"{where}[{i}]({a['value']}).{name}")


def check_dashboard(
    data: dict[str, Any], events: list, start: datetime, end: datetime, tz: str,
    intervals: tuple[str, ...], dimensions: tuple[tuple[str, str | None], ...],
    filters: list[dict[str, Any]] | None = None, limit: int = 1000, offset: int = 0,
) -> None:  # fmt: skip
    flt = [dict(f) for f in filters or []]
    cmp = model.compare(events, DOMAIN, start, end, flt)
    same_summary(data["summary"], cmp["current"], "summary")
    same_summary(data["summary"]["previous"], cmp["previous"], "previous")
    for name, value in cmp["change"].items():
        api = data["summary"]["change"][name]
        if value is None:
            assert api is None, f"change.{name}: {api!r} != None"
        else:
            close(api, value, f"change.{name}")
    for interval in intervals:
        expected = model.timeseries(events, DOMAIN, start, end, tz, interval, flt)
        check_buckets(data[f"ts_{interval}"], expected, tz, f"{tz} {interval}")
    for dim, prop in dimensions:
        alias = f"b_{dim}" + (f"_{prop}" if prop else "")
        expected = model.breakdown(events, DOMAIN, start, end, dim, prop, limit, offset, flt)
        check_rows(data[alias], expected, f"{tz} {alias}")


@pytest.mark.parametrize("tz", [None, "UTC", "Asia/Kolkata", "Australia/Adelaide"])
async def test_dashboard_matches_model(
    client: httpx.AsyncClient, admin_headers: dict[str, str], ny_site: tuple[str, list],
    tz: str | None,
) -> None:  # fmt: skip
    site, events = ny_site
    intervals = ("HOUR", "DAY", "WEEK", "MONTH")
    query = dashboard_query(intervals=intervals, dimensions=ALL_DIMENSIONS).replace(
        "summary(", "timezone from to summary(", 1
    )
    data = await stats(client, admin_headers, site, query, Q_FROM, Q_TO, tz)
    zone = tz or "America/New_York"
    assert data["timezone"] == zone
    assert datetime.fromisoformat(data["from"]) == Q_FROM
    check_dashboard(data, events, Q_FROM, Q_TO, zone, intervals, ALL_DIMENSIONS)


async def test_fall_back_hour_gives_two_buckets(
    client: httpx.AsyncClient, admin_headers: dict[str, str], ny_site: tuple[str, list]
) -> None:
    site, _ = ny_site
    start, end = datetime(2026, 11, 1, tzinfo=NY), datetime(2026, 11, 2, tzinfo=NY)
    data = await stats(client, admin_headers, site, dashboard_query(intervals=("HOUR",)),
                       start, end, None)  # fmt: skip
    starts = [b["start"] for b in data["ts_HOUR"]]
    assert len(starts) == 25
    assert starts[1:3] == ["2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00"]


@pytest.mark.parametrize("offset,limit", [(0, 3), (2, 5), (7, 4), (500, 10)])
async def test_breakdown_pages_match_model(
    client: httpx.AsyncClient, admin_headers: dict[str, str], ny_site: tuple[str, list],
    offset: int, limit: int,
) -> None:  # fmt: skip
    site, events = ny_site
    dims = (("PAGE", None), ("COUNTRY", None), ("CITY", None), ("PROPERTY", "plan"))
    query = dashboard_query(dimensions=dims, limit=limit, offset=offset)
    data = await stats(client, admin_headers, site, query, Q_FROM, Q_TO, "UTC")
    check_dashboard(data, events, Q_FROM, Q_TO, "UTC", (), dims, limit=limit, offset=offset)


FILTER_CASES: dict[str, list[dict[str, Any]]] = {
    "session_is": [{"dimension": "COUNTRY", "operator": "IS", "values": ["US"]}],
    "session_not_in": [
        {"dimension": "BROWSER", "operator": "NOT_IN", "values": ["Chrome", "Safari"]}
    ],  # fmt: skip
    "channel_is_not": [{"dimension": "CHANNEL", "operator": "IS_NOT", "values": ["Direct"]}],
    "page_contains": [{"dimension": "PAGE", "operator": "CONTAINS", "values": ["/blog"]}],
    "page_matches": [
        {"dimension": "PAGE", "operator": "MATCHES", "values": ["^/product/[0-9]+$", "^/pricing$"]}
    ],  # fmt: skip
    "event_is": [{"dimension": "EVENT", "operator": "IS", "values": ["signup", "purchase"]}],
    "property_in": [
        {"dimension": "PROPERTY", "property": "plan", "operator": "IN", "values": ["pro", "team"]}
    ],  # fmt: skip
    "mixed": [
        {"dimension": "DEVICE", "operator": "IS_NOT", "values": ["tablet"]},
        {"dimension": "PAGE", "operator": "NOT_CONTAINS", "values": ["/product"]},
        {"dimension": "REFERRER", "operator": "MATCHES", "values": ["google|direct"]},
    ],
}


@pytest.mark.parametrize("case", sorted(FILTER_CASES))
async def test_filtered_dashboard_matches_model(
    client: httpx.AsyncClient, admin_headers: dict[str, str], ny_site: tuple[str, list],
    case: str,
) -> None:  # fmt: skip
    site, events = ny_site
    dims = (("PAGE", None), ("EVENT", None), ("ENTRY_PAGE", None), ("CHANNEL", None),
            ("COUNTRY", None), ("PROPERTY", "plan"))  # fmt: skip
    query = dashboard_query(intervals=("DAY",), dimensions=dims)
    filters = FILTER_CASES[case]
    data = await stats(client, admin_headers, site, query, Q_FROM, Q_TO, "Asia/Kolkata", filters)
    check_dashboard(data, events, Q_FROM, Q_TO, "Asia/Kolkata", ("DAY",), dims, filters)


async def test_adelaide_fall_back_matches_model(
    client: httpx.AsyncClient, admin_headers: dict[str, str], adelaide_site: tuple[str, list]
) -> None:
    site, events = adelaide_site
    dims = (("PAGE", None), ("SOURCE", None), ("EXIT_PAGE", None))
    query = dashboard_query(intervals=("HOUR", "DAY"), dimensions=dims)
    data = await stats(client, admin_headers, site, query, ADL_FROM, ADL_TO, None)
    check_dashboard(data, events, ADL_FROM, ADL_TO, "Australia/Adelaide", ("HOUR", "DAY"), dims)
    assert len(data["ts_HOUR"]) == 73  # three local days, one of them 25 hours long
    assert ADL_TO.astimezone(UTC) - ADL_FROM.astimezone(UTC) == timedelta(hours=73)


# Lord Howe Island shifts by 30 minutes: 2026-04-05 02:00+11:00 → 01:30+10:30 (15:00Z)
# and 2026-10-04 02:00+10:30 → 02:30+11:00 (15:30Z). Across either shift the local hour
# 01:00 lasts 90 minutes (hh:00 buckets: 14:00Z then 15:30Z in April, 14:30Z then 16:00Z
# in October), so going back by the local minutes alone missed its start.
LHI = ZoneInfo("Australia/Lord_Howe")
LHI_SHIFTS = (datetime(2026, 4, 4, 15, tzinfo=UTC), datetime(2026, 10, 3, 15, 30, tzinfo=UTC))


def _lhi_view(site: str, n: int, at: datetime) -> dict[str, Any]:
    """One page view of its own visitor and session at ``at``."""
    return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"lhi-{n}")), "website_id": site, "visitor_id": f"lhi-v{n}",
            "session_id": f"lhi-s{n}", "event_type": "pageview", "page": f"/lhi/{n}",
            "timestamp": at.astimezone(UTC).isoformat()}  # fmt: skip


@pytest.fixture(scope="module")
async def lord_howe_site(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> tuple[str, list]:
    site = await make_website(client, admin_headers, domain=DOMAIN, timezone="Australia/Lord_Howe")
    events: list[dict[str, Any]] = []
    for i, shift in enumerate(LHI_SHIFTS):
        events += generate_traffic(20260404 + i, site, DOMAIN, shift - timedelta(days=2),
                                   shift + timedelta(days=2), n_visitors=40,
                                   straddle=[shift, shift + timedelta(minutes=30)])  # fmt: skip
        # one view in each quarter hour of the two hours around the shift
        events += [_lhi_view(site, 100 * i + q, shift + timedelta(minutes=15 * q - 60 + 7))
                   for q in range(8)]  # fmt: skip
    await import_events(client, admin_headers, site, events)
    return site, events


@pytest.mark.parametrize("shift", [0, 1])
async def test_lord_howe_half_hour_shift_matches_model(
    client: httpx.AsyncClient, admin_headers: dict[str, str], lord_howe_site: tuple[str, list],
    shift: int,
) -> None:  # fmt: skip
    site, events = lord_howe_site
    at = LHI_SHIFTS[shift]
    day_start = datetime.combine(at.astimezone(LHI).date(), datetime.min.time(), tzinfo=LHI)
    dims = (("PAGE", None), ("ENTRY_PAGE", None))
    # the local day of the shift, and ranges starting inside the shifted half hour
    for start, end, intervals in (
        (day_start, day_start + timedelta(days=1), ("HOUR", "DAY")),
        (at + timedelta(minutes=10), at + timedelta(hours=3), ("HOUR",)),
        (at - timedelta(minutes=20), at + timedelta(minutes=50), ("HOUR",)),
        (at - timedelta(hours=1), at + timedelta(hours=1), ("HOUR",)),
    ):
        query = dashboard_query(intervals=intervals, dimensions=dims)
        for tz in (None, "Australia/Lord_Howe"):
            data = await stats(client, admin_headers, site, query, start, end, tz)
            check_dashboard(data, events, start, end, "Australia/Lord_Howe", intervals, dims)
        if start == at - timedelta(hours=1):
            starts = [datetime.fromisoformat(b["start"]) for b in data["ts_HOUR"]]
            # local 01:00 starts an hour before the shift and lasts 90 minutes
            assert starts == [at - timedelta(hours=1), at + timedelta(minutes=30)], starts
            assert [s.astimezone(LHI).hour for s in starts] == [1, 2 + shift], starts
            assert data["ts_HOUR"][0]["pageviews"] >= 6, data["ts_HOUR"]


@pytest.mark.parametrize("minutes", [-50, -5, 0, 10, 25, 40, 75])
@pytest.mark.parametrize("shift", [0, 1])
def test_last_24_hours_ends_with_the_current_local_hour_in_lord_howe(
    shift: int, minutes: int
) -> None:
    """The range covers now and ends at the next instant reading hh:00 locally, also in
    the 90-minute local hour around a 30-minute shift (an hour after the hour's start
    would end before now there)."""
    now = LHI_SHIFTS[shift] + timedelta(minutes=minutes)
    start, end = preset_range("LAST_24_HOURS", "Australia/Lord_Howe", now)
    assert start <= now < end and end - start == timedelta(hours=24)
    assert end.astimezone(LHI).minute == 0
    brute = now + timedelta(minutes=1)  # the next minute reading hh:00 locally
    while brute.astimezone(LHI).minute != 0:
        brute += timedelta(minutes=1)
    assert end == brute, (now, end, brute)
